//! What an account may do (`users.role`) and whether it may sign in at all (`users.status`).

crate::stored_enum! {
    /// What an account may do.
    pub enum Role {
        User,
        Admin,
    }
}

crate::stored_enum! {
    /// Whether an account may sign in.
    pub enum UserStatus {
        Active,
        Disabled,
    }
}

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
