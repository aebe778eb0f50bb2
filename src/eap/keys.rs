//! The keys an EAP method gives the NAS: the MSK (RFC 3748 §7.10), from the TLS exporter
//! (RFC 5705) with each method's label. Under TLS 1.2: EAP-TTLS "ttls keying material"
//! (RFC 5281 §8), PEAPv0 "client EAP encryption", no context. Under TLS 1.3 (RFC 9427 §2.1):
//! "EXPORTER_EAP_TLS_Key_Material" with the method's type as context. The MSK is the first 64
//! of the 128 octets exported; the RADIUS seam sends it as MS-MPPE-Recv-Key (first half) and
//! MS-MPPE-Send-Key (second half).

use rustls::ServerConnection;

/// The Master Session Key.
pub type Msk = [u8; 64];

/// The MSK of a finished handshake for the method `eap_type` (21 TTLS, 25 PEAP); `None` before
/// the handshake is done.
pub fn msk(conn: &ServerConnection, eap_type: u8) -> Option<Msk> {
    let tls13 = conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
    let context = [eap_type];
    let (label, context): (&[u8], Option<&[u8]>) = if tls13 {
        (b"EXPORTER_EAP_TLS_Key_Material", Some(&context))
    } else if eap_type == super::packet::kind::PEAP {
        (b"client EAP encryption", None)
    } else {
        (b"ttls keying material", None)
    };
    // All 128 octets at once: rustls 0.24's exporter may be called once per connection.
    let exported = conn
        .export_keying_material([0u8; 128], label, context)
        .ok()?;
    let mut msk = [0u8; 64];
    msk.copy_from_slice(exported.get(..64)?);
    Some(msk)
}
