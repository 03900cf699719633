//! Renders a `cachalot stats` [`Report`] as text for people or JSON for
//! machines. Pure: a report in, a string out.

use std::fmt::Write;

use super::not_stored::NotStored;
use super::report::{Report, Row, Source};

/// Pretty-printed JSON, the [`Report`] as is, ending with a newline.
pub fn json(report: &Report) -> Result<String, String> {
    serde_json::to_string_pretty(report)
        .map(|text| text + "\n")
        .map_err(|e| format!("cannot render JSON: {e}"))
}

/// Plain-text tables.
pub fn text(report: &Report) -> String {
    let mut out = String::with_capacity(8192);
    // Writing to a String cannot fail; the results are ignored.
    let _ = write_text(&mut out, report);
    out
}

fn write_text(out: &mut String, r: &Report) -> std::fmt::Result {
    let sources = r.sources.len();
    writeln!(
        out,
        "cachalot stats: {sources} source{}, {} lines, {} malformed, {} outside --since/--until",
        if sources == 1 { "" } else { "s" },
        r.lines,
        r.malformed_lines,
        r.outside_time_range,
    )?;
    if r.since.is_some() || r.until.is_some() {
        writeln!(
            out,
            "filter: since {} (inclusive) until {} (exclusive)",
            r.since.as_deref().unwrap_or("the start"),
            r.until.as_deref().unwrap_or("the end"),
        )?;
    }
    if let (Some(first), Some(last)) = (&r.first_time, &r.last_time) {
        writeln!(out, "lines from {first} to {last}")?;
    }
    writeln!(out)?;
    let hit = format!(
        "hits: result codes {} (Squid's isTcpHit list, with Squid 2.7's names); the \
         modifiers {} are ignored",
        r.hit_codes.join(", "),
        r.ignored_code_modifiers.join(", "),
    );
    wrap(out, &hit)?;
    wrap(out, r.denominators.all)?;
    wrap(out, r.denominators.cacheable)?;
    writeln!(out)?;

    let c = &r.cacheable;
    writeln!(
        out,
        "{:<28}{:>16}{:>16}",
        "", "all traffic", "cacheable only"
    )?;
    let pairs: [(&str, String, String); 6] = [
        (
            "requests",
            r.requests.to_string(),
            c.counts.requests.to_string(),
        ),
        ("hits", r.hits.to_string(), c.counts.hits.to_string()),
        (
            "request hit ratio",
            pct(r.request_hit_ratio),
            pct(c.request_hit_ratio),
        ),
        ("bytes served", human(r.bytes), human(c.counts.bytes)),
        (
            "byte hit ratio",
            pct(r.byte_hit_ratio),
            pct(c.byte_hit_ratio),
        ),
        (
            "bandwidth saved (hit bytes)",
            human(r.bandwidth_saved_bytes),
            human(c.counts.hit_bytes),
        ),
    ];
    for (label, a, b) in pairs {
        writeln!(out, "{label:<28}{a:>16}{b:>16}")?;
    }

    writeln!(out, "\nby result code")?;
    let width = column_width(r.by_code.iter().map(|row| row.code.as_str()), "code");
    writeln!(
        out,
        "  {:<width$} {:>10} {:>8} {:>11}  class",
        "code", "requests", "share", "bytes"
    )?;
    for row in &r.by_code {
        let class = match (row.hit, row.cacheable) {
            (true, _) => "hit",
            (false, true) => "miss",
            (false, false) => "not cacheable",
        };
        writeln!(
            out,
            "  {:<width$} {:>10} {:>8} {:>11}  {class}",
            row.code,
            row.requests,
            pct(row.share_of_requests),
            human(row.bytes),
        )?;
    }

    writeln!(out, "\nby content type")?;
    table(out, "type", &r.by_type)?;
    writeln!(
        out,
        "\ntop {} domains by requests (of {})",
        r.top_domains_by_requests.len(),
        r.domains
    )?;
    table(out, "domain", &r.top_domains_by_requests)?;
    writeln!(
        out,
        "\ntop {} domains by bytes",
        r.top_domains_by_bytes.len()
    )?;
    table(out, "domain", &r.top_domains_by_bytes)?;

    writeln!(out, "\nhit ratio per hour (UTC)")?;
    writeln!(
        out,
        "  {:<20} {:>10} {:>10} {:>9} {:>9} {:>15}",
        "hour", "requests", "hits", "req hit", "byte hit", "cacheable hit"
    )?;
    for hour in &r.per_hour {
        writeln!(
            out,
            "  {:<20} {:>10} {:>10} {:>9} {:>9} {:>15}",
            hour.hour,
            hour.all.counts.requests,
            hour.all.counts.hits,
            pct(hour.all.request_hit_ratio),
            pct(hour.all.byte_hit_ratio),
            pct(hour.cacheable.request_hit_ratio),
        )?;
    }

    if r.not_stored.json_lines > 0 {
        not_stored(out, &r.not_stored)?;
    }

    sources_footer(out, r.malformed_lines, &r.sources, "counted")
}

/// The malformed lines skipped and the sources that could not be read to
/// the end; `done` says what happened to a cut source's first lines.
pub(super) fn sources_footer(
    out: &mut String,
    malformed_lines: u64,
    sources: &[Source],
    done: &str,
) -> std::fmt::Result {
    if malformed_lines > 0 {
        let first: Vec<String> = sources
            .iter()
            .flat_map(|s| {
                s.first_malformed_line_numbers
                    .iter()
                    .map(move |n| format!("{}:{n}", s.name))
            })
            .take(super::report::MALFORMED_KEPT)
            .collect();
        writeln!(
            out,
            "\nmalformed lines skipped: {} (first: {})",
            malformed_lines,
            first.join(", ")
        )?;
    }
    for source in sources {
        if let Some(error) = &source.error {
            writeln!(
                out,
                "\nNOT COMPLETE: {} could not be read ({error}); its first {} lines are {done}",
                source.name, source.lines
            )?;
        }
    }
    Ok(())
}

/// Why responses were not cached: per reason, then the top domains.
fn not_stored(out: &mut String, n: &NotStored) -> std::fmt::Result {
    writeln!(
        out,
        "\nnot cached, by reason (the JSON lines' `reason`): {} requests, {}",
        n.requests,
        human(n.bytes)
    )?;
    if let Some(headline) = n.headline() {
        wrap(out, &headline)?;
    }
    let width = column_width(n.by_reason.iter().map(|row| row.reason.as_str()), "reason");
    writeln!(
        out,
        "  {:<width$} {:>10} {:>8} {:>11} {:>8} {:>8}",
        "reason", "requests", "share", "bytes", "share", "domains"
    )?;
    for row in &n.by_reason {
        writeln!(
            out,
            "  {:<width$} {:>10} {:>8} {:>11} {:>8} {:>8}",
            row.reason,
            row.requests,
            pct(row.share_of_requests),
            human(row.bytes),
            pct(row.share_of_bytes),
            row.domains,
        )?;
    }
    writeln!(
        out,
        "\ntop {} domains by bytes not cached (of {})",
        n.top_domains.len(),
        n.domains
    )?;
    let width = column_width(
        n.top_domains.iter().map(|row| row.domain.as_str()),
        "domain",
    );
    writeln!(
        out,
        "  {:<width$} {:>10} {:>11} {:>8}  main reason",
        "domain", "requests", "bytes", "share"
    )?;
    for row in &n.top_domains {
        writeln!(
            out,
            "  {:<width$} {:>10} {:>11} {:>8}  {} ({})",
            row.domain,
            row.requests,
            human(row.bytes),
            pct(row.share_of_bytes),
            row.main_reason,
            human(row.main_reason_bytes),
        )?;
    }
    Ok(())
}

/// A content-type or domain table.
fn table(out: &mut String, what: &str, rows: &[Row]) -> std::fmt::Result {
    let width = column_width(rows.iter().map(|row| row.key.as_str()), what);
    writeln!(
        out,
        "  {what:<width$} {:>10} {:>9} {:>11} {:>9}",
        "requests", "req hit", "bytes", "byte hit"
    )?;
    for row in rows {
        writeln!(
            out,
            "  {:<width$} {:>10} {:>9} {:>11} {:>9}",
            row.key,
            row.ratios.counts.requests,
            pct(row.ratios.request_hit_ratio),
            human(row.ratios.counts.bytes),
            pct(row.ratios.byte_hit_ratio),
        )?;
    }
    Ok(())
}

fn column_width<'a>(names: impl Iterator<Item = &'a str>, header: &str) -> usize {
    names
        .map(|name| name.chars().count())
        .chain([header.len()])
        .max()
        .unwrap_or(0)
        .min(48)
}

/// `0.4567` → `45.67%`.
pub(super) fn pct(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

/// Binary units, one decimal: `1536` → `1.5 KiB`.
pub(super) fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).unwrap_or(&"EiB"))
}

/// Writes `text` wrapped at 78 columns, continuation lines indented.
pub(super) fn wrap(out: &mut String, text: &str) -> std::fmt::Result {
    let mut column = 0;
    for word in text.split_whitespace() {
        if column > 0 && column + 1 + word.len() > 78 {
            out.push_str("\n   ");
            column = 3;
        } else if column > 0 {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.len();
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_percentages() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(pct(0.0), "0.00%");
        assert_eq!(pct(0.4567), "45.67%");
    }

    #[test]
    fn wrapping_keeps_every_word() {
        let mut out = String::new();
        let text = "word ".repeat(40);
        wrap(&mut out, &text).unwrap();
        assert!(out.lines().all(|line| line.len() <= 78));
        assert_eq!(out.split_whitespace().count(), 40);
    }
}
