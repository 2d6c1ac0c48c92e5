//! The PyTorch driver: runs `torch_ref.py` (one run of a scenario) and `torch_batched.py` (16
//! runs in lockstep) and reads the `seconds` of the JSON line each prints last.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::BenchError;

/// Where the PyTorch reference lives.
#[derive(Debug, Clone)]
pub struct TorchRef {
    /// A Python with torch, numpy and scikit-learn.
    pub python: PathBuf,
    /// `torch_ref.py`.
    pub script: PathBuf,
    /// `torch_batched.py`.
    pub batched: PathBuf,
}

/// `seconds` printed by `torch_ref.py SCENARIO --threads 1` (k-means init and training).
pub fn torch_seconds(torch: &TorchRef, scenario: &Path) -> Result<f64, BenchError> {
    let mut cmd = Command::new(&torch.python);
    cmd.arg(&torch.script)
        .arg(scenario)
        .args(["--threads", "1"]);
    python_seconds(cmd)
}

/// `seconds` printed by `torch_batched.py 16 --threads 1` (k-means init and training of 16
/// early default runs in lockstep).
pub fn batched_seconds(torch: &TorchRef) -> Result<f64, BenchError> {
    let mut cmd = Command::new(&torch.python);
    cmd.arg(&torch.batched).args(["16", "--threads", "1"]);
    python_seconds(cmd)
}

/// Runs `cmd` and reads `seconds` from the last line it prints.
fn python_seconds(mut cmd: Command) -> Result<f64, BenchError> {
    let command = format!("{cmd:?}");
    let fail = |reason: String| BenchError::Torch {
        command: command.clone(),
        reason,
    };
    let out = cmd.output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("").to_string();
        return Err(fail(format!("{}: {last}", out.status)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    json_seconds(last).ok_or_else(|| fail(format!("no `seconds` in its output: {stdout}")))
}

/// The number under `seconds` in a JSON object; None when the line is not such an object.
pub fn json_seconds(line: &str) -> Option<f64> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get("seconds")?
        .as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_seconds_from_torch_ref_output() {
        let line = r#"{"seed": 0, "mse": 17.9, "modes_hit": 5, "seconds": 1.9427596519999497}"#;
        assert_eq!(json_seconds(line), Some(1.9427596519999497));
        assert_eq!(json_seconds(r#"{"seconds" : 2e-3}"#), Some(0.002));
        assert_eq!(json_seconds(r#"{"mse": 17.9}"#), None);
        assert_eq!(json_seconds(r#"{"seconds": "x"}"#), None);
        assert_eq!(json_seconds("Traceback (most recent call last):"), None);
    }
}
