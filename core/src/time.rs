//! ISO 8601 rendering of [`Millis`], without a date library or a clock.

use crate::ids::Millis;

/// `2024-01-02T03:04:05.678Z`: UTC, millisecond precision, as the contract's timestamps.
pub fn iso8601(at: Millis) -> String {
    let ms = at.0 % 1000;
    let secs = at.0 / 1000;
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let (hour, minute, second) = (day_secs / 3600, (day_secs / 60) % 60, day_secs % 60);
    let Ok(year @ 0..=9999) = u64::try_from(year) else {
        // Past year 9999 the year takes more digits than the fixed layout below holds.
        return format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{ms:03}Z");
    };
    // Digit by digit: every message and ack carries a timestamp, and `format!` was ~3 % of a
    // DM send's instructions.
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (at, width, value) in [(0, 4, year), (5, 2, u64::from(month)), (8, 2, u64::from(day)), (11, 2, hour), (14, 2, minute), (17, 2, second), (20, 3, ms)] {
        let mut value = value;
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    // Only ASCII digits went in.
    String::from_utf8_lossy(&text).into_owned()
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
        assert_eq!(iso8601(Millis(253_402_300_799_999)), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn renders_years_past_9999_in_full() {
        assert_eq!(iso8601(Millis(253_402_300_800_000)), "10000-01-01T00:00:00.000Z");
    }

    #[test]
    fn every_field_is_zero_padded_across_four_centuries() {
        let padded = |at: u64| {
            let (secs, ms) = (at / 1000, at % 1000);
            let (year, month, day) = civil_from_days((secs / 86_400) as i64);
            let s = secs % 86_400;
            format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z", s / 3600, (s / 60) % 60, s % 60)
        };
        // A step prime to every field's period walks through them all.
        for at in (0..12_622_780_800_000u64).step_by(7_919_993_017) {
            assert_eq!(iso8601(Millis(at)), padded(at));
        }
    }
}
