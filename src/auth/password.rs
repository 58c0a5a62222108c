//! Password policy and argon2id hashing, off the async executor with bounded concurrency and memory.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _,
    Version,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::http::error::ApiError;
use crate::platform::metrics::HashInFlight;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common_passwords.txt").lines().collect());

/// Checks a new password against the policy: 8 to 128 characters, not only whitespace,
/// not a common password.
pub fn check_policy(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(format!("must be at least {MIN_LEN} characters"));
    }
    if len > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    if password.trim().is_empty() {
        return Err("must not be only whitespace".into());
    }
    if COMMON_PASSWORDS.contains(password.to_lowercase().as_str()) {
        return Err("is too common; choose a less guessable password".into());
    }
    Ok(())
}

/// The result of checking a password against a stored hash.
pub struct Verified {
    pub matches: bool,
    /// A fresh hash with the current parameters, when the stored one used others.
    pub rehashed: Option<String>,
}

/// Hashes and verifies passwords on blocking threads, a bounded number at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    memory: Arc<Memory>,
    /// Verified against when the account does not exist, so timing reveals nothing: it
    /// names the current parameters, so checking it costs what checking a real hash does.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(params: Params, concurrency: usize) -> anyhow::Result<PasswordHasher> {
        Ok(PasswordHasher {
            dummy_hash: make_dummy_hash(&params)?.into(),
            memory: Arc::new(Memory::new(&params)),
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        })
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, ApiError> {
        let (params, memory) = (self.params.clone(), self.memory.clone());
        self.run(move || {
            memory.with(params.block_count(), |blocks| {
                hash_into(&params, password.expose_secret(), blocks)
            })
        })
        .await
    }

    /// Verifies `password` against `stored`, or against a dummy hash when there is no account.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, ApiError> {
        let (params, memory) = (self.params.clone(), self.memory.clone());
        let exists = stored.is_some();
        let dummy = self.dummy_hash.clone();
        self.run(move || {
            let stored = stored.unwrap_or_else(|| dummy.to_string());
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
            let current = Params::try_from(&parsed).ok();
            let matches =
                verify_into(&parsed, current.as_ref(), &memory, password.expose_secret()) && exists;
            let outdated = current.as_ref().is_none_or(|p| {
                p.m_cost() != params.m_cost()
                    || p.t_cost() != params.t_cost()
                    || p.p_cost() != params.p_cost()
            }) || parsed.algorithm.as_str() != argon2::ARGON2ID_IDENT.as_str();
            let rehashed = if matches && outdated {
                Some(memory.with(params.block_count(), |blocks| {
                    hash_into(&params, password.expose_secret(), blocks)
                })?)
            } else {
                None
            };
            Ok(Verified { matches, rehashed })
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        // The permit moves into the blocking job: if the request is dropped, the hash
        // still holds its slot until it really finishes.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Unavailable("shutting down".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _counted = HashInFlight::start();
            work()
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Internal)
    }
}

fn argon2_with(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// Argon2's working memory (its memory cost, 19 MiB by default, per hash), kept between
/// hashes: one buffer per hashing slot, made on first use and reused after, instead of
/// mapping, faulting and unmapping the whole cost for every login. At most
/// `hash_concurrency` buffers exist, since that many hashes run at once.
struct Memory {
    blocks: usize,
    free: Mutex<Vec<Box<[Block]>>>,
}

impl Memory {
    fn new(params: &Params) -> Memory {
        Memory {
            blocks: params.block_count(),
            free: Mutex::new(Vec::new()),
        }
    }

    /// Runs `work` on a buffer of `blocks` blocks: a pooled one for the configured cost, a
    /// one-off for a stored hash made with other parameters.
    fn with<T>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
        if blocks != self.blocks {
            return work(&mut vec![Block::default(); blocks]);
        }
        let pooled = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut buffer =
            pooled.unwrap_or_else(|| vec![Block::default(); blocks].into_boxed_slice());
        let result = work(&mut buffer);
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(buffer);
        result
    }
}

/// A PHC string for `password` with a fresh salt, computed in `blocks`.
fn hash_into(params: &Params, password: &str, blocks: &mut [Block]) -> anyhow::Result<String> {
    let salt = Salt::generate();
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    argon2_with(params)
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    phc_string(params, salt, &out)
}

/// The argon2id PHC string of `params`, `salt` and the hash `out`.
fn phc_string(params: &Params, salt: Salt, out: &[u8]) -> anyhow::Result<String> {
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?,
        salt: Some(salt),
        hash: Some(Output::new(out).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches `parsed`; an argon2id hash whose parameters parse is computed
/// in pooled memory, anything else (older algorithms or versions) by the library's verifier.
fn verify_into(
    parsed: &PasswordHash,
    params: Option<&Params>,
    memory: &Memory,
    password: &str,
) -> bool {
    let argon2id = parsed.algorithm.as_str() == argon2::ARGON2ID_IDENT.as_str()
        && parsed.version == Some(Version::V0x13.into());
    match (params, &parsed.salt, &parsed.hash) {
        (Some(params), Some(salt), Some(expected)) if argon2id => {
            let mut out = vec![0u8; expected.len()];
            let hashed = memory.with(params.block_count(), |blocks| {
                argon2_with(params).hash_password_into_with_memory(
                    password.as_bytes(),
                    salt,
                    &mut out,
                    blocks,
                )
            });
            // `Output`'s equality is constant-time.
            hashed.is_ok() && Output::new(&out).is_ok_and(|computed| &computed == expected)
        }
        // The verifier takes algorithm, version and parameters from the hash itself.
        _ => argon2_with(&Params::DEFAULT)
            .verify_password(password.as_bytes(), parsed)
            .is_ok(),
    }
}

/// Hashes on the calling thread; for the CLI, which has no executor to protect.
pub fn hash_blocking(params: &Params, password: &str) -> anyhow::Result<String> {
    argon2_with(params)
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

/// A hash no password has, at the current parameters: a random salt and random hash
/// bytes (a password matching them is a 2^-256 chance, and unknown accounts never log in
/// anyway). Nothing is hashed to make it, so the server starts without spending a hash
/// and its memory.
fn make_dummy_hash(params: &Params) -> anyhow::Result<String> {
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut out);
    phc_string(params, Salt::generate(), &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_rejects_short_long_and_common_passwords() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(129)).is_err());
        assert!(check_policy("password").is_err());
        assert!(check_policy("PassWord").is_err());
        assert!(check_policy("correct horse battery staple").is_ok());
        assert!(check_policy(&"é".repeat(8)).is_ok());
        assert!(check_policy(&" ".repeat(12)).is_err());
        assert!(check_policy("\t\n \u{a0}\u{2003}   \t ").is_err());
        assert!(COMMON_PASSWORDS.len() > 3000);
    }

    #[tokio::test]
    async fn verify_accepts_the_right_password_and_rehashes_on_new_params() {
        let old = PasswordHasher::new(Params::new(1024, 1, 1, None).unwrap(), 2).unwrap();
        let hash = old
            .hash(SecretString::from("a fine password"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        let same = old
            .verify(SecretString::from("a fine password"), Some(hash.clone()))
            .await
            .unwrap();
        assert!(same.matches && same.rehashed.is_none());
        let wrong = old
            .verify(SecretString::from("another password"), Some(hash.clone()))
            .await
            .unwrap();
        assert!(!wrong.matches);

        let new = PasswordHasher::new(Params::new(2048, 2, 1, None).unwrap(), 2).unwrap();
        let upgraded = new
            .verify(SecretString::from("a fine password"), Some(hash))
            .await
            .unwrap();
        assert!(upgraded.matches);
        assert!(
            upgraded
                .rehashed
                .unwrap()
                .starts_with("$argon2id$v=19$m=2048,t=2,p=1$")
        );
        let nobody = new
            .verify(SecretString::from("a fine password"), None)
            .await
            .unwrap();
        assert!(!nobody.matches);
    }

    /// The hash an unknown account is checked against costs what a real one does: an
    /// argon2id v19 hash at the current parameters with a full salt and output, different
    /// for every server, which the library itself never matches.
    #[test]
    fn the_dummy_hash_names_the_current_parameters_and_matches_nothing() {
        let params = Params::new(2048, 3, 1, None).unwrap();
        let (dummy, other) = (
            make_dummy_hash(&params).unwrap(),
            make_dummy_hash(&params).unwrap(),
        );
        assert_ne!(dummy, other);
        let parsed = PasswordHash::new(&dummy).unwrap();
        assert!(
            dummy.starts_with("$argon2id$v=19$m=2048,t=3,p=1$"),
            "{dummy}"
        );
        let current = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (current.m_cost(), current.t_cost(), current.p_cost()),
            (2048, 3, 1)
        );
        assert_eq!(parsed.hash.unwrap().len(), Params::DEFAULT_OUTPUT_LEN);
        assert!(parsed.salt.unwrap().len() >= 16);
        for password in [
            "",
            "not a real password, only for timing",
            "a fine password",
        ] {
            assert!(
                argon2_with(&params)
                    .verify_password(password.as_bytes(), &parsed)
                    .is_err()
            );
        }
    }

    #[tokio::test]
    async fn pooled_memory_hashes_agree_with_the_library_and_stay_bounded() {
        let params = Params::new(1024, 1, 1, None).unwrap();
        let hasher = PasswordHasher::new(params.clone(), 2).unwrap();
        // Ours verifies with the library's verifier, and the library's with ours.
        let ours = hasher
            .hash(SecretString::from("pooled memory"))
            .await
            .unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon2_with(&params)
                .verify_password(b"pooled memory", &parsed)
                .is_ok()
        );
        assert!(
            argon2_with(&params)
                .verify_password(b"pooled memorY", &parsed)
                .is_err()
        );
        let theirs = hash_blocking(&params, "library hash").unwrap();
        let check = |password: &'static str, stored: &str| {
            let hasher = hasher.clone();
            let stored = stored.to_string();
            async move {
                hasher
                    .verify(SecretString::from(password), Some(stored))
                    .await
                    .unwrap()
                    .matches
            }
        };
        assert!(check("library hash", &theirs).await);
        assert!(!check("library hasH", &theirs).await);
        // An argon2i hash (another algorithm) still verifies, through the library.
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params.clone())
            .hash_password(b"older scheme")
            .unwrap()
            .to_string();
        assert!(check("older scheme", &argon2i).await);
        // Twenty hashes, at most two at a time: at most two buffers are ever kept.
        let jobs: Vec<_> = (0..20)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash(SecretString::from("x y z w")).await })
            })
            .collect();
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        let kept = hasher.memory.free.lock().unwrap().len();
        assert!((1..=2).contains(&kept), "{kept} buffers kept");
    }
}
