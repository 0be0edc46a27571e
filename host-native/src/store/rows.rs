//! Stored rows into the core's types, whichever driver read them: sqlx (SQLite and
//! Postgres) or rusqlite (the SQLite lane).

use super::text::{dec, uint};
use super::StoreError;
use chat_core::ids::{ChatId, ClientId, MessageId, Millis, Seq, UserId};
use chat_core::model::{Chat, ChatKind, Message, MessageKind};

/// A row's columns by position.
pub(super) trait Columns {
    fn text(&self, at: usize) -> Result<String, StoreError>;
    fn maybe_text(&self, at: usize) -> Result<Option<String>, StoreError>;
    fn int(&self, at: usize) -> Result<i64, StoreError>;
}

impl Columns for sqlx::any::AnyRow {
    fn text(&self, at: usize) -> Result<String, StoreError> {
        Ok(sqlx::Row::try_get(self, at)?)
    }
    fn maybe_text(&self, at: usize) -> Result<Option<String>, StoreError> {
        Ok(sqlx::Row::try_get(self, at)?)
    }
    fn int(&self, at: usize) -> Result<i64, StoreError> {
        Ok(sqlx::Row::try_get(self, at)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, at: usize) -> Result<String, StoreError> {
        Ok(self.get(at)?)
    }
    fn maybe_text(&self, at: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(at)?)
    }
    fn int(&self, at: usize) -> Result<i64, StoreError> {
        Ok(self.get(at)?)
    }
}

/// Columns id, kind, title, created_by, created_at, updated_at from `at`.
pub(super) fn chat_at(row: &impl Columns, at: usize, member_ids: Vec<UserId>) -> Result<Chat, StoreError> {
    let kind = match row.text(at + 1)?.as_str() {
        "dm" => ChatKind::Dm,
        "group" => ChatKind::Group,
        other => return Err(StoreError::Corrupt(format!("chat kind {other:?}"))),
    };
    Ok(Chat {
        id: ChatId::new(dec(row.text(at)?)?),
        kind,
        title: row.maybe_text(at + 2)?.map(dec).transpose()?,
        member_ids,
        created_by: UserId::new(dec(row.text(at + 3)?)?),
        created_at: Millis(uint(row.int(at + 4)?, "createdAt")?),
        updated_at: Millis(uint(row.int(at + 5)?, "updatedAt")?),
    })
}

/// Columns id, chat_id, seq, sender_id, client_id, body, kind, created_at from `at`.
pub(super) fn message_at(row: &impl Columns, at: usize) -> Result<Message, StoreError> {
    let kind = match row.text(at + 6)?.as_str() {
        "text" => MessageKind::Text,
        "image" => MessageKind::Image,
        other => return Err(StoreError::Corrupt(format!("message kind {other:?}"))),
    };
    Ok(Message {
        id: MessageId::new(dec(row.text(at)?)?),
        chat_id: ChatId::new(dec(row.text(at + 1)?)?),
        seq: Seq(uint(row.int(at + 2)?, "seq")?),
        sender_id: UserId::new(dec(row.text(at + 3)?)?),
        client_id: ClientId::new(dec(row.text(at + 4)?)?),
        body: dec(row.text(at + 5)?)?,
        kind,
        created_at: Millis(uint(row.int(at + 7)?, "createdAt")?),
    })
}
