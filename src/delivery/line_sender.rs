//! The outbox's [`Sender`] over the real LINE client, and the sender task's start.
//!
//! Each batch is one **single-attempt** multicast ([`LineClient::multicast_once`]) with the batch's retry
//! key: the outbox's dispatcher owns retrying and backing off (a 429 pauses the whole dispatcher, a 5xx or
//! network error retries that batch with full-jitter backoff, with the same key), so the two layers never
//! stack their retries.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Notify;

use super::sender::{SendOutcome, Sender};
use super::DeliveryConfig;
use crate::ids::LineUserId;
use crate::infra::Infra;
use crate::line::client::{self, LineClient, RetryKey};
use crate::line::message::Message;

/// The handle features enqueue through: after committing outbox rows, [`Outbox::wake`] the sender.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    /// Tells the sender new batches are due (call after the transaction that enqueued them commits).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The sender's wake-up, for parts that hold it directly (the plow ingest wakes it after each commit).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

/// The outbox sender over the real LINE client.
pub struct LineSender {
    pub client: LineClient,
}

impl Sender for LineSender {
    async fn multicast(
        &self,
        retry_key: uuid::Uuid,
        recipients: &[String],
        messages: &[Value],
    ) -> SendOutcome {
        let mut typed = Vec::with_capacity(messages.len());
        for m in messages {
            match serde_json::from_value::<Message>(m.clone()) {
                Ok(m) => typed.push(m),
                Err(e) => {
                    return SendOutcome::Rejected {
                        status: 0,
                        message: format!("stored message is not a LINE message object: {e}"),
                    }
                }
            }
        }
        let to: Vec<LineUserId> = recipients.iter().map(LineUserId::new).collect();
        let Some(key) = RetryKey::parse(&retry_key.hyphenated().to_string()) else {
            return SendOutcome::Rejected {
                status: 0,
                message: format!("retry key {retry_key} is not a UUID"),
            };
        };
        match self.client.multicast_once(&to, typed, key).await {
            Ok(client::SendOutcome::Accepted { request_id, .. }) => {
                SendOutcome::Accepted { request_id }
            }
            Ok(client::SendOutcome::AlreadyAccepted { request_id }) => {
                SendOutcome::AlreadyAccepted { request_id }
            }
            Ok(client::SendOutcome::Rejected { status, body }) => SendOutcome::Rejected {
                status,
                message: body.message,
            },
            Ok(client::SendOutcome::QuotaExhausted { .. }) => SendOutcome::QuotaExhausted,
            Ok(client::SendOutcome::RateLimited { .. }) => SendOutcome::RateLimited,
            Ok(client::SendOutcome::GaveUp {
                attempts,
                last_error,
            }) => SendOutcome::Transient {
                message: format!("{attempts} attempt(s): {last_error}"),
            },
            Err(e) => SendOutcome::Rejected {
                status: 0,
                message: e.to_string(),
            },
        }
    }
}

/// Starts the outbox sender (always: every feature that sends enqueues into the outbox). Returns the handle
/// features wake it through.
pub fn spawn_sender(infra: &Infra, cfg: DeliveryConfig, client: LineClient) -> Outbox {
    let outbox = Outbox::default();
    let (store, metrics, health, wake, token) = (
        infra.store.clone(),
        infra.metrics.clone(),
        infra.health.clone(),
        outbox.waker(),
        infra.shutdown.clone(),
    );
    let sender = Arc::new(LineSender { client });
    infra.tasks.spawn(async move {
        if let Err(e) =
            super::sender::run_sender(store, sender, cfg, metrics, health, wake, token).await
        {
            tracing::error!(error = %format!("{e:#}"), "outbox sender stopped");
        }
    });
    outbox
}
