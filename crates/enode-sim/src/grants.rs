//! Grants and their tokens: issuing, rotating on refresh, detecting a
//! replayed refresh token and revoking whole grants.

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;

use crate::problem::OAuthError;
use crate::state::{Grant, State, TokenSet, USED_KEPT};
use crate::stats::{RotationRecord, ViolationKind};
use crate::tokens::{self, Claims, Kind, Scopes};

impl State {
    /// Creates a grant for `user` and `client` and marks the user linked.
    pub fn new_grant(&mut self, user: &str, client: usize, scopes: Scopes) -> u64 {
        let id = self.grants.len() as u64;
        self.grants.push(Grant {
            user: user.to_string(),
            client,
            scopes,
            refresh_seq: 0,
            access_gen: 0,
            revoked: false,
            used: Default::default(),
        });
        if let Some(u) = self.users.get_mut(user) {
            u.linked = true;
            u.grants.push(id);
        }
        id
    }

    fn token(&mut self, kind: Kind, id: u64, seq: u32, expires: Option<DateTime<Utc>>) -> String {
        let claims = Claims {
            kind,
            id,
            seq,
            expires_ms: expires.map_or(i64::MAX, |t| t.timestamp_millis()),
            nonce: self.rng.gen(),
        };
        tokens::encode(&self.key, &claims)
    }

    /// The claims of a token value this simulator issued.
    pub fn decode(&self, token: &str) -> Option<Claims> {
        tokens::decode(&self.key, token)
    }

    /// A client credentials token.
    pub fn client_token(&mut self, client: usize, now: DateTime<Utc>) -> TokenSet {
        let lifetime = self.access_lifetime;
        let access_token = self.token(Kind::Client, client as u64, 0, Some(now + lifetime));
        self.stats.tokens.client_credentials += 1;
        TokenSet {
            access_token,
            token_type: "bearer".into(),
            expires_in: lifetime.num_seconds(),
            refresh_token: None,
            scope: None,
        }
    }

    /// The tokens of grant `g` as they stand (current access generation and
    /// refresh sequence).
    pub fn grant_tokens(&mut self, g: u64, now: DateTime<Utc>) -> TokenSet {
        let lifetime = self.access_lifetime;
        let grant = &self.grants[g as usize];
        let (scopes, gen, seq) = (grant.scopes, grant.access_gen, grant.refresh_seq);
        let access_token = self.token(Kind::User, g, gen, Some(now + lifetime));
        let refresh_token = scopes.contains(Scopes::OFFLINE).then(|| {
            let exp = self
                .refresh
                .lifetime_secs
                .map(|s| now + TimeDelta::seconds(s as i64));
            self.token(Kind::Refresh, g, seq, exp)
        });
        TokenSet {
            access_token,
            token_type: "bearer".into(),
            expires_in: lifetime.num_seconds(),
            refresh_token,
            scope: Some(scopes.to_scope_string()),
        }
    }

    /// Revokes a grant; every token of it dies.
    pub fn revoke_grant(&mut self, g: u64) {
        let grant = &mut self.grants[g as usize];
        if !grant.revoked {
            grant.revoked = true;
            self.stats.tokens.grants_revoked += 1;
            if let Some(u) = self.users.get_mut(&grant.user) {
                u.grants.retain(|x| *x != g);
            }
        }
    }

    /// Revokes every grant of `user`.
    pub fn revoke_user(&mut self, user: &str) {
        let grants = self
            .users
            .get_mut(user)
            .map(|u| std::mem::take(&mut u.grants))
            .unwrap_or_default();
        for g in grants {
            self.revoke_grant(g);
        }
    }

    /// Records an invalid_grant answer and returns it.
    pub fn invalid_grant(
        &mut self,
        now: DateTime<Utc>,
        user: Option<&str>,
        why: &str,
    ) -> OAuthError {
        self.stats
            .violation(now, ViolationKind::InvalidGrant, user, why.to_string());
        OAuthError::invalid_grant(why.to_string())
    }

    /// The refresh grant: checks `token` for `client`, rotates, answers.
    pub fn refresh(
        &mut self,
        client: usize,
        token: &str,
        scope: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, OAuthError> {
        let Some(c) = tokens::decode(&self.key, token).filter(|c| c.kind == Kind::Refresh) else {
            return Err(self.invalid_grant(now, None, "unknown refresh token"));
        };
        let g = c.id;
        let Some(grant) = self.grants.get(g as usize) else {
            return Err(self.invalid_grant(now, None, "unknown refresh token"));
        };
        let user = grant.user.clone();
        if grant.client != client {
            return Err(self.invalid_grant(now, Some(&user), "refresh token of another client"));
        }
        if grant.revoked {
            return Err(self.invalid_grant(now, Some(&user), "grant revoked"));
        }
        if c.expires_ms <= now.timestamp_millis() {
            return Err(self.invalid_grant(now, Some(&user), "refresh token expired"));
        }
        let graced = c.seq != grant.refresh_seq
            && self.refresh.grace_secs.is_some_and(|g| {
                grant
                    .used
                    .iter()
                    .any(|(seq, at)| *seq == c.seq && now < *at + TimeDelta::seconds(g as i64))
            });
        if c.seq != grant.refresh_seq && !graced {
            self.stats.violation(
                now,
                ViolationKind::RefreshReplay,
                Some(&user),
                format!(
                    "refresh token #{} presented after rotation to #{}",
                    c.seq, grant.refresh_seq
                ),
            );
            if self.refresh.revoke_on_replay {
                self.revoke_grant(g);
                return Err(self.invalid_grant(
                    now,
                    Some(&user),
                    "refresh token reused: grant revoked",
                ));
            }
            return Err(self.invalid_grant(now, Some(&user), "refresh token already used"));
        }
        if let Some(s) = scope {
            match Scopes::parse(s) {
                Ok(asked) if grant.scopes.contains(asked) => {}
                _ => {
                    return Err(OAuthError::new(
                        "invalid_scope",
                        "requested scope exceeds the granted scope",
                    ))
                }
            }
        }
        let grant = &mut self.grants[g as usize];
        if self.refresh.rotate {
            // The grace period counts from a token's first use.
            if !grant.used.iter().any(|(seq, _)| *seq == c.seq) {
                if grant.used.len() == USED_KEPT {
                    grant.used.pop_front();
                }
                grant.used.push_back((c.seq, now));
            }
            grant.refresh_seq += 1;
        }
        grant.access_gen += 1;
        self.stats.tokens.refresh_token += 1;
        if graced {
            self.stats.tokens.refresh_graced += 1;
        }
        self.stats.rotation(RotationRecord {
            at: now,
            user,
            used_seq: c.seq,
            new_seq: grant.refresh_seq,
            graced,
        });
        Ok(self.grant_tokens(g, now))
    }
}
