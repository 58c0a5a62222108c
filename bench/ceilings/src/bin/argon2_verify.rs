//! argon2id at audiostudio's default parameters (19 MiB, 2 passes, 1 lane), one hash after
//! another on every core for a few seconds: the ceiling of logins per second.
//! Usage: argon2_verify [seconds]   prints: ms_per_hash <ms> per_second <n>

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};

fn main() {
    let seconds = std::env::args().nth(1).map_or(5, |s| s.parse().expect("seconds"));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limit = Duration::from_secs(seconds);
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let params = Params::DEFAULT;
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                // One buffer per thread, reused, as the server's pool does.
                let mut blocks = vec![Block::default(); params.block_count()];
                let mut out = [0u8; 32];
                let mut done = 0u64;
                while start.elapsed() < limit {
                    argon2
                        .hash_password_into_with_memory(
                            b"violet kettle 9 tambourine",
                            b"sixteen byte salt",
                            &mut out,
                            &mut blocks,
                        )
                        .expect("argon2");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let hashes: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    let elapsed = start.elapsed().as_secs_f64();
    let per_second = hashes as f64 / elapsed;
    println!(
        "ms_per_hash {:.2} per_second {per_second:.1}",
        1000.0 * threads as f64 / per_second
    );
}
