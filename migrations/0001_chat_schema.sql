-- The chat store of the native host (host-native/src/store). One schema for SQLite and
-- PostgreSQL: TEXT ids, BIGINT epoch milliseconds and counters, no dialect-only types.
--
-- Every TEXT value is stored through the store's NUL escaping (PostgreSQL TEXT cannot hold
-- U+0000): U+0000 is written as U+0001 '0' and U+0001 as U+0001 '1'; any other text is
-- stored verbatim. Read these columns through the store, not by hand, when they may hold
-- either character.

CREATE TABLE chats (
    id          TEXT    NOT NULL PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('dm', 'group')),
    title       TEXT,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    -- Set for DMs only: both user ids, sorted (chat_core::model::Chat::dm_key).
    dm_key      TEXT    UNIQUE,
    -- Highest message seq stored; kept by every commit so loading a chat never scans messages.
    last_seq    BIGINT  NOT NULL DEFAULT 0
);

-- Members of a chat; `position` keeps join order (Chat.member_ids).
CREATE TABLE chat_members (
    chat_id   TEXT    NOT NULL REFERENCES chats (id),
    user_id   TEXT    NOT NULL,
    position  BIGINT  NOT NULL,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_by_user ON chat_members (user_id, chat_id);

CREATE TABLE messages (
    id          TEXT    NOT NULL PRIMARY KEY,
    chat_id     TEXT    NOT NULL REFERENCES chats (id),
    seq         BIGINT  NOT NULL,
    sender_id   TEXT    NOT NULL,
    client_id   TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('text', 'image')),
    created_at  BIGINT  NOT NULL,
    -- This is the sender's n-th message in the chat (1-based): answers "how many did the
    -- reader send up to seq s" with one index probe instead of a count.
    sender_nth  BIGINT  NOT NULL,
    UNIQUE (chat_id, seq),
    UNIQUE (sender_id, client_id)
);
CREATE INDEX messages_by_sender_time ON messages (sender_id, created_at);
CREATE INDEX messages_by_chat_sender ON messages (chat_id, sender_id, seq);

-- Read state of every user with a cursor or a message in a chat (members or not):
-- how many messages they sent there, and their read cursor (read_seq NULL: never read).
CREATE TABLE chat_reads (
    chat_id          TEXT    NOT NULL REFERENCES chats (id),
    user_id          TEXT    NOT NULL,
    sent             BIGINT  NOT NULL DEFAULT 0,
    read_seq         BIGINT,
    read_message_id  TEXT,
    read_at          BIGINT,
    own_upto         BIGINT,
    PRIMARY KEY (chat_id, user_id)
);
