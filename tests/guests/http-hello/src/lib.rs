//! `http-hello`: the `hello` example's equivalent as a `wasi:http/proxy` component, for
//! `wasmtime serve` in the `runs` bench. Every request is answered `200 Hello, world!`
//! (text/plain); the request itself is not read, as the `hello` pipeline reads only its input.

#[cfg(target_arch = "wasm32")]
mod proxy {
    use std::io::Write as _;

    use wasip2::http::types::{
        Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
    };

    struct HttpHello;

    wasip2::http::proxy::export!(HttpHello);

    impl wasip2::exports::http::incoming_handler::Guest for HttpHello {
        fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
            let headers =
                Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())])
                    .expect("a valid header");
            let response = OutgoingResponse::new(headers);
            let body = response.body().expect("the body, taken once");
            ResponseOutparam::set(response_out, Ok(response));
            let mut out = body.write().expect("the body's stream, taken once");
            out.write_all(super::GREETING).expect("writing the body");
            out.flush().expect("flushing the body");
            drop(out);
            OutgoingBody::finish(body, None).expect("finishing the body");
        }
    }
}

/// What every request is answered.
pub const GREETING: &[u8] = b"Hello, world!";
