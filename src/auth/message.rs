//! The texts the engine produces: OTP messages from `smstext`/`emailtext` templates, and the
//! masked recipients shown to the user in a Reply-Message.

use crate::delivery::Channel;

/// Renders a message template: `<otp>`, `<serial>` and `<user>` are replaced. A template
/// without `<otp>` still carries the OTP, as in LinOTP: SMS texts get it in front
/// (`<otp> text`), e-mail texts get it appended.
pub fn render(template: &str, channel: Channel, otp: &str, serial: &str, user: &str) -> String {
    let template = if template.trim().is_empty() {
        "<otp>"
    } else {
        template
    };
    let with_otp = if template.contains("<otp>") {
        template.to_string()
    } else {
        match channel {
            Channel::Sms => format!("<otp> {template}"),
            Channel::Email => format!("{template}<otp>"),
        }
    };
    with_otp
        .replace("<serial>", serial)
        .replace("<user>", user)
        .replace("<otp>", otp)
}

/// Renders a subject: placeholders replaced, no OTP added.
pub fn render_subject(template: &str, otp: &str, serial: &str, user: &str) -> String {
    template
        .replace("<serial>", serial)
        .replace("<user>", user)
        .replace("<otp>", otp)
}

/// Masks a phone number, keeping the first three and last three characters:
/// `+4917012345678` → `+49********678`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 3 || i >= chars.len() - 3 {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// Masks an e-mail address, keeping the first character and the domain:
/// `alice@example.org` → `a****@example.org`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let mut chars = local.chars();
            let first = chars.next().map(String::from).unwrap_or_default();
            format!("{first}{}@{domain}", "*".repeat(chars.count()))
        }
        None => mask_phone(email),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_like_linotp() {
        assert_eq!(render("<otp>", Channel::Sms, "123456", "S", "u"), "123456");
        assert_eq!(render("", Channel::Sms, "123456", "S", "u"), "123456");
        assert_eq!(
            render(
                "Hello <user>, code <otp> (<serial>)",
                Channel::Sms,
                "1",
                "S",
                "u"
            ),
            "Hello u, code 1 (S)"
        );
        assert_eq!(
            render("no otp in message", Channel::Sms, "123456", "S", "u"),
            "123456 no otp in message"
        );
        assert_eq!(
            render("no otp in message", Channel::Email, "123 456", "S", "u"),
            "no otp in message123 456"
        );
        assert_eq!(
            render("<otp> double <otp>", Channel::Email, "9", "S", "u"),
            "9 double 9"
        );
        assert_eq!(
            render_subject("<otp> subject", "123 456", "S", "u"),
            "123 456 subject"
        );
    }

    #[test]
    fn masks() {
        assert_eq!(mask_phone("+4917012345678"), "+49********678");
        assert_eq!(mask_phone("12345"), "*****");
        assert_eq!(mask_email("alice@example.org"), "a****@example.org");
        assert_eq!(mask_email("b@x.org"), "b@x.org");
    }
}
