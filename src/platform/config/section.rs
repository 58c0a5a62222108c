//! `settings_section!`: a group of settings declared once (name, type, default, doc), from
//! which come the struct, its defaults, its key list and its lines in `audiostudio config`.

use std::path::PathBuf;

use secrecy::SecretString;

use super::Synchronous;

/// How a setting's value reads in `audiostudio config` (secrets masked).
pub trait Shown {
    fn shown(&self) -> String;
}

impl Shown for String {
    fn shown(&self) -> String {
        self.clone()
    }
}

impl Shown for PathBuf {
    fn shown(&self) -> String {
        self.display().to_string()
    }
}

impl Shown for Vec<String> {
    fn shown(&self) -> String {
        self.join(", ")
    }
}

impl Shown for Synchronous {
    fn shown(&self) -> String {
        self.pragma().to_owned()
    }
}

impl Shown for Option<SecretString> {
    fn shown(&self) -> String {
        match self {
            Some(_) => "******** (set)".into(),
            None => "(not set)".into(),
        }
    }
}

macro_rules! shown_by_display {
    ($($t:ty),+) => {
        $(impl Shown for $t {
            fn shown(&self) -> String {
                self.to_string()
            }
        })+
    };
}

shown_by_display!(bool, u32, u64, i64, usize);

/// Declares a settings section: a struct read from the top level of the figment (each
/// field is a key of its own, so `ROCKET_<KEY>` and Rocket.toml see no sections), its
/// defaults, `KEYS` and `lines()`.
macro_rules! settings_section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident: $ty:ty = $default:expr,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )+
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $($field: $default,)+
                }
            }
        }

        impl $name {
            /// The keys of this section, as operators write them.
            pub const KEYS: &[&str] = &[$(stringify!($field)),+];

            /// `(key, value)` for `audiostudio config`, secrets masked.
            pub fn lines(&self) -> Vec<(&'static str, String)> {
                vec![$((stringify!($field), $crate::platform::config::section::Shown::shown(&self.$field))),+]
            }
        }
    };
}

pub(crate) use settings_section;
