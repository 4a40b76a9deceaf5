//! Measures window computations per second for a fleet of 100,000 clusters spread over 50 time
//! zones and six maintenance policies, at instants spread over a year (so DST changes are
//! crossed). Single-threaded.
//!
//! `cargo run --release -p fleetplane-scheduler --example window_throughput`
#![allow(
    clippy::print_stdout,
    reason = "the example reports its measurements on stdout"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use fleetplane_scheduler::{Calendar, CronExpr, Exclusion, Schedule};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

const CLUSTERS: usize = 100_000;

const ZONES: [&str; 50] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Europe/London",
    "Europe/Paris",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Warsaw",
    "Europe/Helsinki",
    "Europe/Athens",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Africa/Cairo",
    "Africa/Johannesburg",
    "Africa/Lagos",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Tehran",
    "Asia/Karachi",
    "Asia/Kathmandu",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Asia/Jakarta",
    "Asia/Manila",
    "Australia/Sydney",
    "Australia/Adelaide",
    "Australia/Perth",
    "Australia/Brisbane",
    "Pacific/Auckland",
    "Pacific/Honolulu",
    "Pacific/Apia",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/Phoenix",
    "America/Halifax",
    "America/St_Johns",
    "America/Sao_Paulo",
    "America/Santiago",
    "America/Mexico_City",
    "America/Bogota",
];

fn policies() -> Result<Vec<Calendar>, Box<dyn std::error::Error>> {
    let schedule =
        |name: &str, cron: &str, hours: u8| -> Result<Schedule, Box<dyn std::error::Error>> {
            Ok(Schedule::new(name, CronExpr::parse(cron)?, hours)?)
        };
    let freeze = Exclusion::new(
        "year-end freeze",
        "2025-12-20T00:00:00Z".parse()?,
        "2026-01-05T00:00:00Z".parse()?,
    )?;
    Ok(vec![
        Calendar::new(vec![schedule("nightly", "30 2 * * *", 3)?], vec![]),
        Calendar::new(vec![schedule("weekly", "0 0 * * SUN", 6)?], vec![]),
        Calendar::new(
            vec![schedule("monthly", "@monthly", 24)?],
            vec![freeze.clone()],
        ),
        Calendar::new(
            vec![
                schedule("weeknights", "0 22 * * MON-FRI", 2)?,
                schedule("weekend", "0 4 * * SAT,SUN", 4)?,
            ],
            vec![],
        ),
        Calendar::new(vec![schedule("tuesday", "0 3 * * 2", 4)?], vec![freeze]),
        Calendar::new(vec![schedule("six-hourly", "0 */6 * * *", 1)?], vec![]),
    ])
}

struct Cluster {
    zone: usize,
    policy: usize,
    now: Timestamp,
}

fn measure(label: &str, clusters: &[Cluster], mut query: impl FnMut(&Cluster) -> usize) {
    // One warm-up pass, then passes until at least two seconds have been spent.
    let mut found = clusters.iter().map(&mut query).sum::<usize>();
    let start = Instant::now();
    let mut computations = 0usize;
    while start.elapsed() < Duration::from_secs(2) {
        found += clusters.iter().map(&mut query).sum::<usize>();
        computations += clusters.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    let per_second = computations as f64 / seconds;
    black_box(found);
    println!(
        "{label:<22} {per_second:>12.0} computations/s  ({:.2} µs each; whole fleet in {:.3} s)",
        1e6 / per_second,
        CLUSTERS as f64 / per_second
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let zones: Vec<TimeZone> = ZONES
        .iter()
        .map(|z| TimeZone::get(z))
        .collect::<Result<_, _>>()?;
    let policies = policies()?;
    let year_start: Timestamp = "2025-01-01T00:00:00Z".parse()?;
    let clusters: Vec<Cluster> = (0..CLUSTERS)
        .map(|i| Cluster {
            zone: i % zones.len(),
            policy: (i / zones.len()) % policies.len(),
            // Spread over the year, so every zone's DST changes are crossed by some clusters.
            now: year_start + SignedDuration::from_secs((i as i64 * 104_729) % (365 * 86_400)),
        })
        .collect();
    println!(
        "{CLUSTERS} clusters, {} zones, {} policies, single thread",
        zones.len(),
        policies.len()
    );
    measure("next_start", &clusters, |c| {
        usize::from(
            policies[c.policy]
                .next_start(c.now, &zones[c.zone])
                .is_some(),
        )
    });
    measure("open_at", &clusters, |c| {
        usize::from(policies[c.policy].open_at(c.now, &zones[c.zone]).is_some())
    });
    measure("upcoming(3)", &clusters, |c| {
        policies[c.policy].upcoming(c.now, &zones[c.zone], 3).len()
    });
    let crons: Vec<&CronExpr> = policies.iter().map(|p| p.schedules()[0].cron()).collect();
    measure("cron next_fire_after", &clusters, |c| {
        usize::from(
            crons[c.policy]
                .next_fire_after(c.now, &zones[c.zone])
                .is_some(),
        )
    });
    Ok(())
}
