//! Comparing the tables of two results directories, `seconds` (the only column allowed to
//! differ between runs of the same scenario) excluded.

use std::fs;
use std::path::Path;

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `runs.csv` with the `seconds` column emptied.
pub fn runs_without_seconds(dir: &Path) -> String {
    let mut r = csv::Reader::from_path(dir.join("runs.csv")).unwrap();
    let header = r.headers().unwrap().clone();
    let col = header.iter().position(|h| h == "seconds").unwrap();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    for rec in r.records() {
        let mut row: Vec<String> = rec.unwrap().iter().map(String::from).collect();
        row[col].clear();
        w.write_record(&row).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// runs.csv (apart from `seconds`) and history.csv of `a` and `b` are equal.
pub fn assert_same_tables(a: &Path, b: &Path) {
    assert_eq!(runs_without_seconds(a), runs_without_seconds(b));
    assert_eq!(read(&a.join("history.csv")), read(&b.join("history.csv")));
}
