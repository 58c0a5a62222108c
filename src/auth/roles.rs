//! What an account may do (`users.role`) and whether it may sign in at all (`users.status`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::text_enum_sql;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

text_enum_sql!(Role);

impl Role {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
}

text_enum_sql!(UserStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_stored_and_shown_as_the_schema_spells_them() {
        assert_eq!(Role::Admin.as_str(), "admin");
        assert_eq!("user".parse::<Role>().unwrap(), Role::User);
        assert!("root".parse::<Role>().is_err());
        assert_eq!(
            serde_json::to_string(&UserStatus::Disabled).unwrap(),
            "\"disabled\""
        );
    }
}
