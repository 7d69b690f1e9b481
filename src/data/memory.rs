//! Memory planning: refuse a run that cannot fit before allocating, instead of being killed.

use crate::error::{Error, Result};

/// Bytes a run over `rows` × `dim` embeddings with a `k`-neighbour graph is expected to need.
///
/// The matrix (f32) dominates; the graph adds `k` (u32 + f32) per row; ids, labels and routes
/// add about 96 bytes per row; per-thread scratch (GEMM blocks, top-k buffers) and the binary
/// itself stay under a fixed 256 MB at 1,000,000 rows.
pub fn estimate_bytes(rows: u64, dim: u64, k: u64) -> u64 {
    rows.saturating_mul(dim)
        .saturating_mul(4)
        .saturating_add(rows.saturating_mul(k.saturating_mul(8) + 96))
        .saturating_add(256 << 20)
}

/// The machine's available memory (Linux `MemAvailable`), when it can be read.
pub fn available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Parses sizes such as `8G`, `512M`, `1.5GB`, `1000000` (bytes) for `--max-memory`.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a size such as 8G, 512M or 1000000"))?;
    let scale: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TB" | "TIB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit '{other}' in '{text}'")),
    };
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("'{text}' must be a positive size"));
    }
    Ok((value * scale) as u64)
}

/// Fails with exit code 2 when the estimate exceeds `limit` (or the available memory).
pub fn check(rows: u64, dim: u64, k: u64, limit: Option<u64>) -> Result<()> {
    let Some(limit) = limit.or_else(available_bytes) else {
        return Ok(());
    };
    let need = estimate_bytes(rows, dim, k);
    if need > limit {
        return Err(Error::Usage(format!(
            "this run needs about {:.1} GiB ({rows} rows × {dim} dims, k = {k}) but the limit is {:.1} GiB; \
             raise the memory limit, lower k, or split the input",
            need as f64 / (1u64 << 30) as f64,
            limit as f64 / (1u64 << 30) as f64
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("2K").unwrap(), 2048);
        assert_eq!(parse_size("1.5G").unwrap(), 1_610_612_736);
        assert_eq!(parse_size("512mb").unwrap(), 512 << 20);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-3G").is_err());
        assert!(parse_size("3Q").is_err());
    }

    #[test]
    fn a_million_by_384_needs_about_two_gib() {
        let need = estimate_bytes(1_000_000, 384, 16);
        assert!(need > 1_536_000_000 && need < 2_400_000_000, "{need}");
        assert!(check(1_000_000, 384, 16, Some(1 << 30)).is_err());
        assert!(check(1_000, 384, 16, Some(1 << 30)).is_ok());
    }
}
