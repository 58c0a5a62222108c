//! The plans `audiostudio seed` adds (kept when they exist).

use rusqlite::{Transaction, params};
use serde_json::json;

use crate::platform::clock::Millis;

struct Plan {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    price_cents: i64,
    monthly_tokens: i64,
    features: &'static [&'static str],
}

const PLANS: [Plan; 3] = [
    Plan {
        id: "plan_free",
        name: "Free",
        description: "Try the studio",
        price_cents: 0,
        monthly_tokens: 100,
        features: &["text_to_speech", "transcription"],
    },
    Plan {
        id: "plan_creator",
        name: "Creator",
        description: "For regular creators",
        price_cents: 1200,
        monthly_tokens: 2000,
        features: &[
            "text_to_speech",
            "transcription",
            "voice_clone",
            "music_generation",
        ],
    },
    Plan {
        id: "plan_studio",
        name: "Studio",
        description: "Everything, in volume",
        price_cents: 3900,
        monthly_tokens: 10000,
        features: &[
            "text_to_speech",
            "transcription",
            "voice_clone",
            "music_generation",
            "stem_separation",
            "audio_enhancement",
            "sound_effects",
        ],
    },
];

/// Adds the plans that are missing; returns how many.
pub fn seed_plans(tx: &Transaction<'_>, now: Millis) -> rusqlite::Result<usize> {
    let mut added = 0;
    for (order, plan) in (0i64..).zip(PLANS.iter()) {
        added += tx.execute(
            "INSERT INTO subscription_plans (id, name, description, price_cents, monthly_tokens, features, sort_order, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) ON CONFLICT DO NOTHING",
            params![
                plan.id,
                plan.name,
                plan.description,
                plan.price_cents,
                plan.monthly_tokens,
                json!(plan.features).to_string(),
                order,
                now
            ],
        )?;
    }
    Ok(added)
}
