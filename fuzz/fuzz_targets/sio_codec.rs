//! The Engine.IO v4 / Socket.IO v5 codec the edge host decodes every WebSocket frame
//! with (`chat-sio-codec`).
//!
//! Input: one frame's text (a long-polling payload is split on U+001E first). Besides
//! "never panics", a decoded packet must encode to text that decodes to the same packet,
//! and `event_head` must name the same event as a full decode whenever both succeed.

#![no_main]

use chat_sio_codec::{
    attachments, decode_engine, decode_frame, encode_engine, event_head, split_polling_payload, Frame, Handshake,
    SocketPacket,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames and polling bodies are UTF-8; anything else never reaches the codec.
    let Ok(text) = std::str::from_utf8(data) else { return };
    check_frame(text);
    for packet in split_polling_payload(text) {
        check_frame(packet);
    }
});

fn check_frame(frame: &str) {
    if let Ok(engine) = decode_engine(frame) {
        let again = encode_engine(&engine);
        assert_eq!(decode_engine(&again).as_ref(), Ok(&engine), "engine packet does not round-trip");
    }
    match decode_frame(frame) {
        Ok(Frame::Socket(packet)) => check_socket(&packet),
        Ok(Frame::Engine(chat_sio_codec::EnginePacket::Open(data))) => {
            if let Ok(handshake) = Handshake::decode(data) {
                let encoded = handshake.encode();
                let reread = Handshake::decode(&encoded[1..]).expect("an encoded handshake decodes");
                assert_eq!(reread, handshake, "handshake does not round-trip");
            }
        }
        Ok(Frame::Engine(_)) | Err(_) => {}
    }
    if let Some(text) = frame.strip_prefix('4') {
        let _ = attachments(text);
        let head = event_head(text);
        if let (Some((nsp, id, event)), Ok(SocketPacket::Event { nsp: full_nsp, id: full_id, event: full_event, .. })) =
            (head, SocketPacket::decode(text))
        {
            // `event_head` reads text packets and `50-` binary ones; both agree with decode.
            assert_eq!((nsp, id, event), (full_nsp, full_id, full_event), "event_head disagrees with decode");
        }
    }
}

fn check_socket(packet: &SocketPacket) {
    let text = packet.encode();
    let reread = SocketPacket::decode(&text).unwrap_or_else(|error| panic!("{text:?} does not decode: {error}"));
    assert_eq!(&reread, packet, "socket packet does not round-trip through {text:?}");
    let frame = packet.to_frame();
    assert_eq!(decode_frame(&frame), Ok(Frame::Socket(packet.clone())));
}
