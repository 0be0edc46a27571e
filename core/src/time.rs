//! ISO 8601 rendering of [`Millis`], without a date library or a clock.

use crate::ids::Millis;

/// `2024-01-02T03:04:05.678Z`: UTC, millisecond precision, as the contract's timestamps.
pub fn iso8601(at: Millis) -> String {
    let ms = at.0 % 1000;
    let secs = at.0 / 1000;
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        day_secs / 3600,
        (day_secs / 60) % 60,
        day_secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_epoch() {
        assert_eq!(iso8601(Millis(0)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn renders_milliseconds_and_leap_days() {
        assert_eq!(iso8601(Millis(951_782_400_123)), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(Millis(1_700_000_000_000)), "2023-11-14T22:13:20.000Z");
        assert_eq!(iso8601(Millis(4_102_444_799_999)), "2099-12-31T23:59:59.999Z");
    }
}
