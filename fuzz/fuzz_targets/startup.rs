//! Startup phase: packet splitting, parsing and the client-parameter rules.
#![no_main]
use libfuzzer_sys::fuzz_target;
use unscharf::session::options::{client_params, split_options};
use unscharf::wire::startup::{next_startup_packet, parse_startup_packet, StartupPacket};

fuzz_target!(|data: &[u8]| {
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(p)) = next_startup_packet(&mut buf) {
        if let Ok(StartupPacket::Startup(m)) = parse_startup_packet(&p) {
            if let Ok(params) = client_params(&m, "crm") {
                let _ = params.forward.encode();
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = split_options(s);
    }
});
