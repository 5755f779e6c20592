//! Numbers as the dashboard prints them: short, fixed-width friendly.

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate or count with an SI suffix and three significant digits: `5120.0` → `5.12k`.
pub fn si(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let (value, suffix) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e3 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    let decimals = match value.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    if suffix.is_empty() && decimals == 0 {
        format!("{value:.0}")
    } else {
        format!("{value:.decimals$}{suffix}")
    }
}

/// A metric value: fixed notation for ordinary magnitudes, scientific for tiny or huge ones.
pub fn metric(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{x:.2e}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

/// Seconds as `m:ss` or `h:mm:ss`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "--:--".to_owned();
    }
    let s = seconds.round() as u64;
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Bytes in binary units: `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_as_documented() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(si(5120.0), "5.12k");
        assert_eq!(si(51_200.0), "51.2k");
        assert_eq!(si(512.0), "512");
        assert_eq!(si(3.5), "3.50");
        assert_eq!(si(2.5e6), "2.50M");
        assert_eq!(si(f64::NAN), "NaN");
        assert_eq!(metric(0.0), "0");
        assert_eq!(metric(-0.01234), "-0.0123");
        assert_eq!(metric(1.5e-5), "1.50e-5");
        assert_eq!(metric(500.0), "500.0");
        assert_eq!(metric(f64::INFINITY), "inf");
        assert_eq!(duration(59.6), "1:00");
        assert_eq!(duration(3725.0), "1:02:05");
        assert_eq!(duration(f64::NAN), "--:--");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
