//! Integration tests of the scheduler: daylight-saving tables per zone and property tests.

mod common;
mod cron_tables;
mod dst;
mod properties;
mod windows;
