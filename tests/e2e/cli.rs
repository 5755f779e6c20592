use crate::{hone, stderr, stdout};

#[test]
fn help_lists_exactly_the_commands_that_exist() {
    let output = hone(&["--help"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let commands: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        [
            "doctor", "train", "eval", "monitor", "convert", "generate", "init", "sft", "rm",
            "rlhf", "sharpen", "help"
        ],
        "help text:\n{text}"
    );
}

#[test]
fn unknown_command_is_an_error_naming_it() {
    let output = hone(&["frobnicate"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn version_flag_prints_the_package_version() {
    let output = hone(&["--version"]);
    assert!(output.status.success());
    assert_eq!(
        stdout(&output).trim(),
        format!("hone {}", env!("CARGO_PKG_VERSION"))
    );
}
