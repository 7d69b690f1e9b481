//! The one CSV writer: every CSV labelwise writes (budget.csv, batch.csv, autolabels.csv,
//! curve.csv, selections.csv, split.csv, export's items.csv) is a header and rows written here,
//! with the `csv` crate's defaults (comma, `\n` line ends, quotes only where a field needs them),
//! so the files share one dialect and one error mapping.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `header` then every row of `rows` as CSV into `w`, and flushes.
///
/// Every row must have as many fields as the header (the `csv` crate refuses ragged rows: an
/// internal error). `path` names the file in errors.
pub fn write_csv<W, H, R>(
    w: W,
    path: &Path,
    header: H,
    rows: impl IntoIterator<Item = R>,
) -> Result<()>
where
    W: Write,
    H: IntoIterator,
    H::Item: AsRef<[u8]>,
    R: IntoIterator,
    R::Item: AsRef<[u8]>,
{
    let mut csv = ::csv::Writer::from_writer(w);
    let err = |e: ::csv::Error| Error::Internal(format!("{}: {e}", path.display()));
    csv.write_record(header).map_err(err)?;
    for row in rows {
        csv.write_record(row).map_err(err)?;
    }
    csv.flush().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_rows_and_quoting() {
        let mut buf = Vec::new();
        write_csv(
            &mut buf,
            Path::new("t.csv"),
            ["a", "b"],
            [["1", "x,y"], ["2", "say \"hi\""]],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "a,b\n1,\"x,y\"\n2,\"say \"\"hi\"\"\"\n"
        );
    }

    #[test]
    fn ragged_rows_are_an_internal_error() {
        let mut buf = Vec::new();
        let e = write_csv(&mut buf, Path::new("t.csv"), ["a", "b"], [vec!["1"]]).unwrap_err();
        assert!(matches!(e, Error::Internal(_)), "{e}");
    }
}
