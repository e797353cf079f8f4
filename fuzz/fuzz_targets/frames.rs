//! Frame decoder and typed views: no input may panic or loop.
#![no_main]
use libfuzzer_sys::fuzz_target;
use unscharf::wire::{backend, frontend, next_frame};

fuzz_target!(|data: &[u8]| {
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(f)) = next_frame(&mut buf, 1 << 20) {
        let b = f.body();
        let _ = frontend::query(b);
        let _ = frontend::parse(b);
        if let Ok(bind) = frontend::bind(b) {
            let _ = bind.with_result_formats(b, &[0, 1]);
        }
        let _ = frontend::describe(b);
        let _ = frontend::execute(b);
        let _ = frontend::close(b);
        let _ = backend::row_description(b);
        if let Ok(fields) = backend::data_row(b) {
            for _ in fields {}
        }
        let _ = backend::error_fields(b);
        let _ = backend::copy_response(b);
        let _ = backend::sasl_mechanisms(b);
        let _ = backend::parameter_status(b);
    }
});
