//! Reply attributes of an Accept: the `reply` list of the most specific policy, its
//! placeholders filled from the directory entry found for the request, each checked against the
//! front end's dictionary, and all of them against the room one reply has, before the Accept
//! may leave.

use super::decision::{Ctx, Decision, MSG_FAILED};
use super::engine::Engine;
use super::policy::ReplyField;
use super::reason::Reason;
use super::{AuthError, Outcome};

impl Engine {
    /// Fills an Accept's reply attributes from the most specific policy with a `reply` list,
    /// from the directory entry found for this request. (A directory that could not answer
    /// has already turned the request into a Reject: an Accept without the attributes that
    /// authorise the user — a VLAN, a group — could grant the wrong access.)
    pub(super) fn add_reply_attributes(
        &self,
        ctx: &Ctx<'_>,
        mut decision: Decision,
    ) -> Result<Decision, AuthError> {
        let Outcome::Accept { reply, .. } = &mut decision.outcome else {
            return Ok(decision);
        };
        let Some(templates) = self.setting(&ctx.policy(), |a| &a.reply) else {
            return Ok(decision);
        };
        let user = ctx.user.as_ref().map(|(user, _)| user);
        let fill = |field: ReplyField| -> String {
            let attribute = |name: &str| {
                user.and_then(|u| u.attributes.get(name).cloned())
                    .unwrap_or_default()
            };
            match field {
                ReplyField::User => ctx.login.clone(),
                ReplyField::Realm => ctx.realm.name.clone(),
                ReplyField::Mobile => user.and_then(|u| u.mobile.clone()).unwrap_or_default(),
                ReplyField::Email => user.and_then(|u| u.email.clone()).unwrap_or_default(),
                ReplyField::Phone => attribute("phone"),
                ReplyField::GivenName => attribute("givenname"),
                ReplyField::Surname => attribute("surname"),
                ReplyField::Groups => String::new(),
            }
        };
        for template in templates {
            if template.per_group() {
                for group in user.iter().flat_map(|u| &u.groups) {
                    reply.push((
                        template.attribute.clone(),
                        template.render(fill, Some(group)),
                    ));
                }
            } else {
                reply.push((template.attribute.clone(), template.render(fill, None)));
            }
        }
        // Fail closed: an Accept without an attribute a policy added (it may be the one that
        // restricts the user) is worse than no Accept.
        let unsendable = self.reply_check.as_ref().and_then(|check| {
            reply.iter().find_map(|(name, value)| {
                check
                    .check(name, value)
                    .err()
                    .map(|error| (name.clone(), error))
            })
        });
        if let Some((attribute, error)) = unsendable {
            tracing::error!(
                user = %ctx.login,
                %attribute,
                %error,
                "reply attribute cannot be sent: Access-Accept turned into Access-Reject"
            );
            return Ok(Decision::reject(
                MSG_FAILED,
                Reason::ReplyAttribute {
                    attribute,
                    error: error.to_string(),
                },
                decision.serial.as_deref(),
            ));
        }
        self.fit_reply(ctx, decision)
    }

    /// Fail closed on size too: an Accept whose message and attributes together do not fit
    /// in one reply (a `{groups}` template times a user in 200 groups) could not be sent at
    /// all, and the NAS would retransmit into the same decision. A Reject, which fits, is
    /// decided, logged and audited instead, once.
    fn fit_reply(&self, ctx: &Ctx<'_>, decision: Decision) -> Result<Decision, AuthError> {
        let (Some(check), Some(limit)) = (self.reply_check.as_ref(), ctx.req.reply_limit) else {
            return Ok(decision);
        };
        let Outcome::Accept { message, reply } = &decision.outcome else {
            return Ok(decision);
        };
        let len = check.reply_len(message.as_deref(), reply);
        if len <= limit {
            return Ok(decision);
        }
        tracing::error!(
            user = %ctx.login,
            attributes = reply.len(),
            len,
            limit,
            "reply attributes do not fit in one reply: Access-Accept turned into Access-Reject"
        );
        Ok(Decision::reject(
            MSG_FAILED,
            Reason::ReplyTooLong { len, limit },
            decision.serial.as_deref(),
        ))
    }
}
