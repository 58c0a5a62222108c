//! Short-lived access tokens: JWT HS256 with pinned algorithm, issuer and audience.

use std::io::Write;
use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::derived::DerivedKey;
use super::roles::Role;
use crate::platform::config::Settings;
use crate::platform::ids::{SessionId, UserId};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The session id; revoking the session revokes the token at once.
    pub sid: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    pub ttl_secs: i64,
    derived: DerivedKey,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is invalid")]
    Invalid,
    #[error("the access token has expired")]
    Expired,
}

impl JwtKeys {
    pub fn new(secret: &[u8], settings: &Settings) -> JwtKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.auth.jwt_issuer]);
        validation.set_audience(&[&settings.auth.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // Expiry is checked against the application's clock below, so tests can move time.
        validation.validate_exp = false;
        validation.leeway = 0;
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: settings.auth.jwt_issuer.clone(),
            audience: settings.auth.jwt_audience.clone(),
            ttl_secs: i64::try_from(settings.auth.access_token_ttl_secs).unwrap_or(i64::MAX),
            derived: DerivedKey::from_secret(secret),
        }
    }

    /// The key derived from the same secret, for MACs that are not access tokens.
    pub fn derived(&self) -> &DerivedKey {
        &self.derived
    }

    pub fn issue(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
        role: Role,
        now_secs: i64,
    ) -> anyhow::Result<String> {
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            role,
            iat: now_secs,
            exp: now_secs.saturating_add(self.ttl_secs),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.claims.exp <= now_secs {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }
}

const SECRET_FILE: &str = "jwt_secret";

/// The signing secret: `JWT_SECRET` when set, otherwise one generated on first start
/// and kept in `<data_dir>/jwt_secret` (mode 0600) so tokens survive restarts.
pub fn load_or_create_secret(settings: &Settings) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &settings.secrets.jwt_secret {
        return Ok(secret.expose_secret().as_bytes().to_vec());
    }
    let path = settings.storage.data_dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = hex::decode(text.trim()).map_err(|_| unreadable(&path))?;
            if secret.len() < 32 {
                return Err(unreadable(&path));
            }
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_secret(&path),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

fn unreadable(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is not a valid secret\nfix: delete it to generate a new one (every user will have to log in again), or set JWT_SECRET",
        path.display()
    )
}

fn create_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut secret = vec![0u8; 64];
    rand::rng().fill_bytes(&mut secret);
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    file.write_all(hex::encode(&secret).as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a new JWT signing secret");
    Ok(secret)
}
