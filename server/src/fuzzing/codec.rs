//! imap-codec as mailsite builds it (vendor/, with the extensions upstream lacks) on
//! any bytes: a command or response it parses encodes to bytes that parse back, with
//! nothing left over, to a value that encodes to the same bytes again. (Not to the
//! same value: the encoder writes sequence sets normalized, `10:3,5` as `3:10`, as
//! upstream's `quirk_always_normalize_sequence_sets` has it.) Both directions matter:
//! the server parses commands and writes responses, the tests' clients do the reverse.

use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::{CommandCodec, ResponseCodec};

/// The property for one codec, written once for commands and once for responses
/// (their decoders and encoders are distinct types).
macro_rules! round_trip {
    ($codec:ident, $data:expr) => {
        if let Ok((_, first)) = $codec::default().decode($data) {
            let bytes = $codec::default().encode(&first).dump();
            let shown = String::from_utf8_lossy(&bytes);
            match $codec::default().decode(&bytes) {
                Ok((rest, again)) => {
                    assert!(rest.is_empty(), "{shown:?} left {rest:?}");
                    let again = $codec::default().encode(&again).dump();
                    assert_eq!(shown, String::from_utf8_lossy(&again), "{first:?}");
                }
                Err(error) => {
                    panic!("{first:?} encoded as {shown:?}, which does not parse: {error:?}")
                }
            }
        }
    };
}

pub fn round_trips(data: &[u8]) {
    round_trip!(CommandCodec, data);
    round_trip!(ResponseCodec, data);
}
