//! How the CLI prints: JSON (indented for people, one line for programs), aligned tables,
//! sizes and times.

use std::io::{IsTerminal, Write};

use serde::Serialize;

/// Prints `value` as JSON on stdout: indented when stdout is a terminal, one line otherwise.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if stdout.is_terminal() {
        serde_json::to_writer_pretty(&mut stdout, value)?;
    } else {
        serde_json::to_writer(&mut stdout, value)?;
    }
    writeln!(stdout)?;
    Ok(())
}

/// Prints `rows` under `header` on stdout, each column as wide as its widest cell.
pub fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> anyhow::Result<()> {
    let mut widths = header.map(|title| title.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut stdout = std::io::stdout().lock();
    let header = header.map(str::to_owned);
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            if column + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:width$}  "));
            }
        }
        writeln!(stdout, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A size for people: `812 B`, `145.3 KiB`, `2.0 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// An RFC 3339 time from the API, to the second (`2026-11-23T06:21:27Z`); as given if it
/// does not parse.
pub fn time(rfc3339: &str) -> String {
    match humantime::parse_rfc3339(rfc3339) {
        Ok(time) => humantime::format_rfc3339_seconds(time).to_string(),
        Err(_) => rfc3339.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(size(812), "812 B");
        assert_eq!(size(148_828), "145.3 KiB");
        assert_eq!(size(2 << 20), "2.0 MiB");
    }

    #[test]
    fn times_drop_their_fraction() {
        assert_eq!(time("2026-11-23T06:21:27.123Z"), "2026-11-23T06:21:27Z");
        assert_eq!(time("not a time"), "not a time");
    }
}
