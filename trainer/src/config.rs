//! Resolving a component's config: its defaults, overlaid by a TOML file, overlaid by
//! `--set key=value` overrides. Unknown keys and ill-typed values are errors naming the key.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// `defaults` ⊕ the TOML `file` ⊕ each `key=value` of `sets` (dotted keys reach nested tables;
/// a value that is not valid TOML is taken as a string, so `--set env_id=CartPole-v1` works).
pub fn resolve<T: Serialize + DeserializeOwned>(
    defaults: &T,
    file: Option<&Path>,
    sets: &[String],
) -> Result<T> {
    let mut table = toml::Table::try_from(defaults)
        .map_err(|e| Error::Config(format!("defaults do not serialise: {e}")))?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            cause: source,
        })?;
        let overlay: toml::Table = toml::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), one_line(&e))))?;
        merge(&mut table, overlay);
        from_table::<T>(table.clone())
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    }
    for set in sets {
        let (key, value) = parse_set(set)?;
        insert_dotted(&mut table, &key, value)
            .map_err(|e| Error::Config(format!("--set {set}: {e}")))?;
        from_table::<T>(table.clone()).map_err(|e| Error::Config(format!("--set {set}: {e}")))?;
    }
    from_table(table).map_err(Error::Config)
}

fn from_table<T: DeserializeOwned>(table: toml::Table) -> std::result::Result<T, String> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e| one_line(&e))
}

fn one_line(err: &impl std::fmt::Display) -> String {
    err.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base)), toml::Value::Table(overlay)) => merge(base, overlay),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn parse_set(set: &str) -> Result<(String, toml::Value)> {
    let Some((key, raw)) = set.split_once('=') else {
        return Err(Error::Config(format!(
            "--set expects key=value, got {set:?}"
        )));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::Config(format!("--set {set:?} has an empty key")));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    Ok((key.to_owned(), value))
}

fn insert_dotted(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    match key.split_once('.') {
        None => {
            table.insert(key.to_owned(), value);
            Ok(())
        }
        Some((head, rest)) => match table
            .entry(head.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            toml::Value::Table(inner) => insert_dotted(inner, rest, value),
            _ => Err(format!("`{head}` is not a table")),
        },
    }
}

/// Writes `value` as TOML.
pub fn to_toml<T: Serialize>(value: &T) -> Result<String> {
    toml::to_string_pretty(value)
        .map_err(|e| Error::Config(format!("config does not serialise: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        learning_rate: f64,
        num_envs: usize,
        env_id: String,
        target_kl: Option<f64>,
        net: Net,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Net {
        hidden: Vec<usize>,
    }

    impl Default for Sample {
        fn default() -> Self {
            Self {
                learning_rate: 2.5e-4,
                num_envs: 4,
                env_id: "CartPole-v1".into(),
                target_kl: None,
                net: Net::default(),
            }
        }
    }

    impl Default for Net {
        fn default() -> Self {
            Self {
                hidden: vec![64, 64],
            }
        }
    }

    fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hone-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn file_then_sets_override_defaults() {
        let file = write_temp("ok.toml", "num_envs = 8\n[net]\nhidden = [32]\n");
        let sets = [
            "learning_rate=1e-3".to_owned(),
            "env_id=Pendulum-v1".into(),
            "target_kl=0.02".into(),
        ];
        let got: Sample = resolve(&Sample::default(), Some(&file), &sets).unwrap();
        let want = Sample {
            learning_rate: 1e-3,
            num_envs: 8,
            env_id: "Pendulum-v1".into(),
            target_kl: Some(0.02),
            net: Net { hidden: vec![32] },
        };
        assert_eq!(got, want);
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let file = write_temp("unknown.toml", "learning_rat = 1e-3\n");
        let err = resolve(&Sample::default(), Some(&file), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown.toml") && err.contains("unknown field `learning_rat`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_nested_key_from_set_is_named() {
        let err = resolve(&Sample::default(), None, &["net.width=3".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--set net.width=3") && err.contains("unknown field `width`"),
            "{err}"
        );
    }

    #[test]
    fn ill_typed_value_names_the_key() {
        let err = resolve(&Sample::default(), None, &["num_envs=-2".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("num_envs"), "{err}");
        let err = resolve(&Sample::default(), None, &["num_envs=lots".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("num_envs") && err.contains("lots"), "{err}");
    }

    #[test]
    fn malformed_set_and_toml_syntax_are_errors() {
        let err = resolve(&Sample::default(), None, &["num_envs".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--set expects key=value"), "{err}");
        let file = write_temp("syntax.toml", "num_envs = = 3\n");
        let err = resolve(&Sample::default(), Some(&file), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("syntax.toml"), "{err}");
    }

    #[test]
    fn resolved_config_round_trips_through_toml() {
        let cfg = Sample {
            target_kl: Some(0.01),
            ..Sample::default()
        };
        let text = to_toml(&cfg).unwrap();
        let back: Sample = toml::from_str(&text).unwrap();
        assert_eq!(back, cfg);
    }
}
