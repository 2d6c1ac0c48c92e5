//! The rules: every key against its own rule, then the rules between keys — the typed keys'
//! here, each chosen remedy's from its declaration. Each error names the key to change and,
//! in `allowed`, the other key and why.

use super::table::{fields, remedy_keys};
use crate::sim::checked::{Chosen, ValidRun};
use crate::sim::config::key::{check_value, Limits};
use crate::sim::config::{
    Check, Family, Field, FieldValue, ModelKind, RangeError, Remedy, Rule, RunConfig, Update,
};
use crate::sim::data::DataFile;
use crate::sim::vq;

/// Checks every key of `cfg` against its rule, including the cross-key caps (with `data`, the
/// data file it runs on, when it has one), then the rules between keys: the configuration
/// that passes is a `ValidRun`, the only form training accepts.
pub fn validate(cfg: &RunConfig, data: Option<&DataFile>) -> Result<ValidRun, RangeError> {
    params_are_remedy_keys(cfg)?;
    let points = match data {
        Some(f) => f.data.len() as u64,
        None => (cfg.data.modes as u64).saturating_mul(cfg.data.points_per_mode as u64),
    };
    let limits = Some(Limits { cfg, points });
    let fields = fields(cfg);
    for field in &fields {
        let ok = match (&field.rule, &field.value) {
            (Rule::Int { min, .. }, FieldValue::Int(i)) => {
                *i >= *min && *i <= field.rule.int_max(limits)
            }
            (Rule::Float { lo, hi }, FieldValue::Float(x)) => {
                lo.admits_above(*x) && hi.admits_below(*x)
            }
            (Rule::Choice(words), FieldValue::Word(w)) => words.contains(&w.as_str()),
            (Rule::Text(_), FieldValue::Word(_)) | (Rule::Bool, FieldValue::Bool(_)) => true,
            (Rule::Ints { min }, FieldValue::Ints(v)) => v.iter().all(|i| i >= min),
            _ => unreachable!("the key table pairs each rule with a value of its kind"),
        };
        if !ok {
            return Err(RangeError {
                key: field.key.to_string(),
                value: field.value.to_toml().to_string(),
                allowed: field.rule.allowed(limits),
            });
        }
    }
    let defaults = super::table::fields(&RunConfig::default());
    let check = Check {
        cfg,
        fields: &fields,
        defaults: &defaults,
    };
    // Kind and estimator first: their rules name the key a user is most likely to fix.
    chosen_rules(&check, &[vq::KIND, vq::ESTIMATOR])?;
    sync_needs_a_gradient_codebook(cfg)?;
    identity_fits(&check)?;
    chosen_rules(
        &check,
        &[vq::PARAMETERIZATION, vq::RESTART, vq::REGULARISER],
    )?;
    let q = &cfg.quantizer;
    let chosen = Chosen {
        restart: position(vq::RESTART, &q.restart)?,
        estimator: position(vq::ESTIMATOR, &q.estimator)?,
        parameterization: position(vq::PARAMETERIZATION, &q.parameterization)?,
        kind: position(vq::KIND, &q.kind)?,
    };
    Ok(ValidRun::new(cfg.clone(), data.cloned(), chosen))
}

/// The position in `family` of the remedy called `word` (which the key's own rule admitted).
fn position(family: &Family, word: &str) -> Result<usize, RangeError> {
    family
        .remedies
        .iter()
        .position(|r| r.word == word)
        .ok_or_else(|| RangeError {
            key: family.key.unwrap_or_default().to_string(),
            value: toml::Value::String(word.to_string()).to_string(),
            allowed: Rule::Choice(family.words).allowed(None),
        })
}

/// The remedies' keys a config sets are keys some remedy declares, with values of their type.
fn params_are_remedy_keys(cfg: &RunConfig) -> Result<(), RangeError> {
    for (name, raw) in cfg.quantizer.params.iter() {
        let key = remedy_keys().find(|k| k.name() == name);
        let allowed = match key {
            None => "a key of [quantizer] (see `vqsim keys`)".to_string(),
            Some(k) => match check_value(&k.rule, raw) {
                Ok(_) => continue,
                Err(_) => k.rule.allowed(None),
            },
        };
        return Err(RangeError {
            key: format!("quantizer.{name}"),
            value: raw.to_string(),
            allowed,
        });
    }
    Ok(())
}

/// The remedies of `family` that `check` chooses: the one its key names, or, for
/// regularisers, each whose weight is above 0.
fn chosen<'a>(check: &'a Check, family: &'a Family) -> impl Iterator<Item = &'static Remedy> + 'a {
    let value = |key: &str| check.fields.iter().find(|f| f.key == key).map(|f| &f.value);
    family
        .remedies
        .iter()
        .copied()
        .filter(move |r| match family.key {
            Some(key) => matches!(value(key), Some(FieldValue::Word(w)) if w == r.word),
            None => r
                .keys
                .first()
                .is_some_and(|w| matches!(value(w.key), Some(FieldValue::Float(x)) if *x > 0.0)),
        })
}

/// The cross-key rules of the remedies chosen in `families`, in registry order.
fn chosen_rules(check: &Check, families: &[&Family]) -> Result<(), RangeError> {
    for family in families {
        for remedy in chosen(check, family) {
            for rule in remedy.rules {
                rule(check)?;
            }
        }
    }
    Ok(())
}

/// The synchronised update passes ν of the decoder's gradient to the selected code, which an
/// EMA codebook would ignore.
fn sync_needs_a_gradient_codebook(cfg: &RunConfig) -> Result<(), RangeError> {
    let q = &cfg.quantizer;
    if q.sync_nu > 0.0 && q.update == Update::Ema {
        return Err(RangeError {
            key: "quantizer.sync_nu".into(),
            value: q.sync_nu.to_string(),
            allowed: "only 0 with quantizer.update = \"ema\" (an EMA codebook takes no gradient)"
                .into(),
        });
    }
    Ok(())
}

/// `model.kind = "identity"` has no network to shape: the latent is the input, and the MLP's
/// keys must stay at their defaults rather than be silently ignored.
fn identity_fits(check: &Check) -> Result<(), RangeError> {
    let cfg = check.cfg;
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
    let off: Option<(&Field, &Field)> = check
        .fields
        .iter()
        .zip(check.defaults)
        .find(|(f, d)| unused.contains(&f.key) && f.value != d.value);
    match off {
        None => Ok(()),
        Some((f, d)) => Err(RangeError {
            key: f.key.into(),
            value: f.value.to_toml().to_string(),
            allowed: format!(
                "its default {} with model.kind = \"identity\" (no hidden layers)",
                d.value.to_toml()
            ),
        }),
    }
}
