//! Codes stored with a saga that are not plain enums: a gRPC status code, kept by its
//! canonical name. Enums stored as text come from `platform::stored_code!`.

use std::fmt;

use platform::stored::UnknownCode;

/// A gRPC code as stored with a step's last error (`UNAVAILABLE`, …): `tonic::Code` inside
/// the process, its canonical name on disk and on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcCode(pub tonic::Code);

impl GrpcCode {
    /// The canonical name, as `grpc-status` names it.
    pub fn name(self) -> String {
        platform::metrics::code_name(self.0)
    }

    pub fn parse(name: &str) -> Result<Self, UnknownCode> {
        (0..=16)
            .map(tonic::Code::from)
            .find(|code| platform::metrics::code_name(*code) == name)
            .map(Self)
            .ok_or_else(|| UnknownCode {
                kind: "gRPC",
                code: name.to_owned(),
            })
    }
}

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

platform::stored_text!(GrpcCode, |code: &GrpcCode| code.name(), GrpcCode::parse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_round_trip_by_name() {
        for n in 0..=16 {
            let code = GrpcCode(tonic::Code::from(n));
            assert_eq!(GrpcCode::parse(&code.name()).ok(), Some(code));
        }
        assert!(GrpcCode::parse("NOT_A_CODE").is_err());
    }
}
