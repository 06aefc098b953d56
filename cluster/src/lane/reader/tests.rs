//! The entry reader against a real loopback connection, with busy polling
//! on and off: entries of every size come back whole and in order, and a
//! connection that ends inside an entry or announces an oversized one is
//! an error.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use super::*;
use crate::lane::frame::{self, Entry, Status};

/// A connected pair: the reading end, non-blocking as a lane's, and the
/// writing end, blocking, for a plain thread.
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (reader, _) = listener.accept().unwrap();
    reader.set_nonblocking(true).unwrap();
    (reader, writer)
}

fn replies(sizes: &[usize]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (id, size) in sizes.iter().enumerate() {
        frame::push_reply(&mut bytes, id as u64, Status::Ok, &vec![id as u8; *size]);
    }
    bytes
}

/// Writes `bytes` in pieces of `piece` bytes from a thread, then closes.
fn send_in_pieces(
    mut writer: TcpStream,
    bytes: Vec<u8>,
    piece: usize,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for chunk in bytes.chunks(piece) {
            writer.write_all(chunk).unwrap();
        }
    })
}

async fn read_all(window: Duration, sizes: &[usize], piece: usize) {
    let (reader, writer) = pair();
    let sending = send_in_pieces(writer, replies(sizes), piece);
    let mut reader = EntryReader::new(reader);
    reader.window = window;
    for (expected_id, size) in sizes.iter().enumerate() {
        let body = reader.next().await.unwrap().expect("an entry");
        match frame::parse(body).unwrap() {
            Entry::Reply { id, payload, .. } => {
                assert_eq!(id, expected_id as u64);
                assert_eq!(payload.len(), *size);
                assert!(payload.iter().all(|byte| *byte == expected_id as u8));
            }
            other => panic!("unexpected entry {other:?}"),
        }
    }
    assert!(reader.next().await.unwrap().is_none(), "clean end");
    sending.join().unwrap();
    assert!(reader.buf.len() <= READ_BUFFER, "the buffer shrinks back");
}

const SIZES: [usize; 7] = [0, 1, 32, 70_000, 3, 1_000_000, 16];

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn entries_come_back_whole_while_busy_polling() {
    read_all(Duration::from_secs(1), &SIZES, 7).await;
    read_all(Duration::from_secs(1), &SIZES, 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn entries_come_back_whole_when_waiting_on_readiness() {
    read_all(Duration::ZERO, &SIZES, 7).await;
    read_all(Duration::ZERO, &SIZES, 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn an_end_inside_an_entry_is_an_error() {
    let (reader, writer) = pair();
    let mut bytes = replies(&[100]);
    bytes.truncate(bytes.len() - 1);
    send_in_pieces(writer, bytes, 1000).join().unwrap();
    let mut reader = EntryReader::new(reader);
    let err = reader.next().await.unwrap_err();
    assert!(err.contains("inside an entry"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn an_oversized_entry_is_refused_before_it_is_read() {
    let (reader, writer) = pair();
    let prefix = u32::try_from(frame::MAX_BODY + 1).unwrap().to_le_bytes();
    send_in_pieces(writer, prefix.to_vec(), 4).join().unwrap();
    let mut reader = EntryReader::new(reader);
    let err = reader.next().await.unwrap_err();
    assert!(err.contains("exceeds"), "{err}");
    assert_eq!(
        reader.buf.len(),
        READ_BUFFER,
        "nothing was allocated for it"
    );
}
