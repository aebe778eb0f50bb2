//! TOTP (RFC 6238): HOTP over the number of `step`-second periods since the Unix epoch.

/// The TOTP time step for a Unix time: floor(time / step).
pub fn totp_step(unix_time: i64, step: u64) -> u64 {
    let step = step.max(1);
    u64::try_from(unix_time.max(0)).unwrap_or(0) / step
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::hotp;

    #[test]
    fn rfc6238_appendix_b_sha1() {
        let seed = b"12345678901234567890";
        let cases = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, want) in cases {
            assert_eq!(hotp(seed, totp_step(time, 30), 8), want, "time {time}");
        }
    }
}
