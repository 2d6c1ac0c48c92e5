//! Rules between keys: values each allowed alone that do not make sense together. Each error
//! names the key to change and, in `allowed`, the other key and why.

use super::validate::{fields, word, RangeError};
use crate::sim::config::{
    Estimator, ModelKind, Parameterization, QuantizerKind, Restart, RunConfig, Update,
};
use crate::sim::vq::fsq::{levels as fsq_levels, MIN_LEVELS as FSQ_MIN_LEVELS};

/// The quantizer keys FSQ uses; every other `quantizer.*` key must keep its default under it.
const FSQ_KEYS: [&str; 2] = ["quantizer.kind", "quantizer.codebook_size"];

/// Checks the cross-key rules of a config whose keys each passed their own rule.
pub(super) fn check(cfg: &RunConfig) -> Result<(), RangeError> {
    let q = &cfg.quantizer;
    let err = |key: &str, value: &str, allowed: String| RangeError {
        key: key.to_string(),
        value: value.to_string(),
        allowed,
    };
    if q.kind == QuantizerKind::Fsq {
        fsq_levels(q.codebook_size, cfg.model.latent_dim).ok_or_else(|| {
            err(
                "quantizer.codebook_size",
                &q.codebook_size.to_string(),
                format!(
                    "L^m for an integer L ≥ {FSQ_MIN_LEVELS} when quantizer.kind = \"fsq\" (FSQ rounds each of the model.latent_dim = m = {} dims to L levels)",
                    cfg.model.latent_dim
                ),
            )
        })?;
        let defaults = fields(&RunConfig::default());
        for (field, default) in fields(cfg).into_iter().zip(defaults) {
            if field.key.starts_with("quantizer.")
                && !FSQ_KEYS.contains(&field.key)
                && field.value != default.value
            {
                return Err(err(
                    field.key,
                    &field.value.to_toml().to_string(),
                    format!(
                        "only its default {} when quantizer.kind = \"fsq\" (FSQ has no learned codebook, codebook loss or estimator)",
                        default.value.to_toml()
                    ),
                ));
            }
        }
    }
    if q.estimator == Estimator::Ibq && q.update == Update::Ema {
        return Err(err(
            "quantizer.estimator",
            "\"ibq\"",
            "\"ste\" or \"rotation\" when quantizer.update = \"ema\" (IBQ's point is the gradient it gives every code, which an EMA codebook ignores)".into(),
        ));
    }
    if q.sync_nu > 0.0 {
        let other = match (q.update, q.estimator) {
            (Update::Ema, _) => Some("quantizer.update = \"ema\" (an EMA codebook takes no gradient)"),
            (_, Estimator::Ibq) => Some("quantizer.estimator = \"ibq\" (IBQ already gives the selected code the decoder's whole gradient)"),
            _ => None,
        };
        if let Some(other) = other {
            return Err(err(
                "quantizer.sync_nu",
                &q.sync_nu.to_string(),
                format!("only 0 with {other}"),
            ));
        }
    }
    identity_fits(cfg)?;
    reparameterized_codes(cfg)
}

/// `model.kind = "identity"` has no network to shape: the latent is the input, and the MLP's
/// keys must stay at their defaults rather than be silently ignored.
fn identity_fits(cfg: &RunConfig) -> Result<(), RangeError> {
    if cfg.model.kind != ModelKind::Identity {
        return Ok(());
    }
    let m = &cfg.model;
    if m.latent_dim != cfg.data.dim {
        return Err(RangeError {
            key: "model.latent_dim".into(),
            value: m.latent_dim.to_string(),
            allowed: format!(
                "data.dim ({}) with model.kind = \"identity\" (the latent is the input)",
                cfg.data.dim
            ),
        });
    }
    let unused = ["model.width", "model.depth", "model.activation"];
    for (f, d) in fields(cfg).into_iter().zip(fields(&RunConfig::default())) {
        if unused.contains(&f.key) && f.value != d.value {
            return Err(RangeError {
                key: f.key.into(),
                value: f.value.to_toml().to_string(),
                allowed: format!(
                    "its default {} with model.kind = \"identity\" (no hidden layers)",
                    d.value.to_toml()
                ),
            });
        }
    }
    Ok(())
}

/// SimVQ and affine codes are a map of learned parameters: only the codebook loss's gradient
/// can move them (EMA and restarts write the codes themselves, which the map would undo).
fn reparameterized_codes(cfg: &RunConfig) -> Result<(), RangeError> {
    let q = &cfg.quantizer;
    if q.parameterization == Parameterization::Direct
        || (q.update == Update::Loss && q.restart == Restart::None)
    {
        return Ok(());
    }
    Err(RangeError {
        key: "quantizer.parameterization".into(),
        value: toml::Value::String(word(&q.parameterization)).to_string(),
        allowed: format!(
            "\"direct\" with quantizer.update = {} and quantizer.restart = {} (simvq and affine codes learn only by the codebook loss: update = \"loss\", restart = \"none\")",
            toml::Value::String(word(&q.update)),
            toml::Value::String(word(&q.restart)),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fsq(codes: usize, m: usize) -> RunConfig {
        let mut cfg = RunConfig::default();
        cfg.quantizer.kind = QuantizerKind::Fsq;
        cfg.quantizer.codebook_size = codes;
        cfg.model.latent_dim = m;
        cfg
    }

    #[test]
    fn fsq_codebook_size_must_be_a_power_of_the_levels() {
        assert_eq!(fsq_levels(64, 2), Some(8));
        assert_eq!(fsq_levels(1024, 2), Some(32));
        assert_eq!(fsq_levels(125, 3), Some(5));
        assert_eq!(fsq_levels(48, 2), None);
        // Two levels per dim are refused, and fewer than two cannot be.
        assert_eq!(fsq_levels(4, 2), None);
        assert_eq!(fsq_levels(64, 16), None);
        assert_eq!(check(&fsq(64, 2)), Ok(()));
        assert_eq!(
            check(&fsq(4, 2)).unwrap_err().key,
            "quantizer.codebook_size"
        );
        let e = check(&fsq(48, 2)).unwrap_err();
        assert_eq!(e.key, "quantizer.codebook_size");
        assert!(
            e.allowed.contains("model.latent_dim = m = 2"),
            "{}",
            e.allowed
        );
    }

    #[test]
    fn fsq_refuses_every_codebook_key_off_its_default() {
        let mut cfg = fsq(64, 2);
        cfg.quantizer.restart = Restart::Lru;
        assert_eq!(check(&cfg).unwrap_err().key, "quantizer.restart");
        let mut cfg = fsq(64, 2);
        cfg.quantizer.beta = 1.0;
        let e = check(&cfg).unwrap_err();
        assert_eq!(e.key, "quantizer.beta");
        assert!(e.allowed.contains("0.25") && e.allowed.contains("quantizer.kind"));
        // Keys outside [quantizer] are free.
        let mut cfg = fsq(64, 2);
        cfg.model.width = 8;
        assert_eq!(check(&cfg), Ok(()));
    }

    #[test]
    fn ibq_refuses_an_ema_codebook() {
        let mut cfg = RunConfig::default();
        cfg.quantizer.estimator = Estimator::Ibq;
        assert_eq!(check(&cfg), Ok(()));
        cfg.quantizer.update = Update::Ema;
        let e = check(&cfg).unwrap_err();
        assert_eq!(e.key, "quantizer.estimator");
        assert!(e.allowed.contains("quantizer.update"));
    }

    #[test]
    fn sync_refuses_ema_and_ibq() {
        let mut cfg = RunConfig::default();
        cfg.quantizer.sync_nu = 0.2;
        assert_eq!(check(&cfg), Ok(()));
        cfg.quantizer.estimator = Estimator::Rotation;
        assert_eq!(check(&cfg), Ok(()));
        cfg.quantizer.estimator = Estimator::Ibq;
        assert!(check(&cfg)
            .unwrap_err()
            .allowed
            .contains("quantizer.estimator"));
        cfg.quantizer.estimator = Estimator::Ste;
        cfg.quantizer.update = Update::Ema;
        let e = check(&cfg).unwrap_err();
        assert_eq!(e.key, "quantizer.sync_nu");
        assert!(e.allowed.contains("quantizer.update"));
    }
}
