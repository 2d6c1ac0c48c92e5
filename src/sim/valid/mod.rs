//! Validation: the key table (`table`), the rules every key and every pair of keys obey
//! (`rules`), and their tests.

mod rules;
mod table;
#[cfg(test)]
mod tests;

pub use rules::validate;
pub use table::{
    fields, keys_markdown, label, remedy_keys, rule_of, section_keys, FILE_KEYS, MIXTURE_KEYS,
    SECTIONS,
};
