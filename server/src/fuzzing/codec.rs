//! imap-codec as mailsite builds it (vendor/, with the extensions upstream lacks) on
//! any bytes: a command or response it parses encodes to bytes that parse back to the
//! same value, with nothing left over. Both directions matter: the server parses
//! commands and writes responses, the tests' clients do the reverse.

use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::{CommandCodec, ResponseCodec};

pub fn round_trips(data: &[u8]) {
    if let Ok((_, command)) = CommandCodec::default().decode(data) {
        let bytes = CommandCodec::default().encode(&command).dump();
        match CommandCodec::default().decode(&bytes) {
            Ok((rest, again)) => {
                assert!(rest.is_empty(), "{command:?} left {rest:?}");
                assert_eq!(command, again, "{:?}", String::from_utf8_lossy(&bytes));
            }
            Err(error) => panic!(
                "{command:?} encoded as {:?}, which does not parse: {error:?}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
    if let Ok((_, response)) = ResponseCodec::default().decode(data) {
        let bytes = ResponseCodec::default().encode(&response).dump();
        match ResponseCodec::default().decode(&bytes) {
            Ok((rest, again)) => {
                assert!(rest.is_empty(), "{response:?} left {rest:?}");
                assert_eq!(response, again, "{:?}", String::from_utf8_lossy(&bytes));
            }
            Err(error) => panic!(
                "{response:?} encoded as {:?}, which does not parse: {error:?}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
}
