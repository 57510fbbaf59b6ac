//! Enums stored as text: each variant has a code that is its one spelling in the database,
//! and a stored value that is not a known code is an error, never a default.

use std::fmt;

/// A stored code that no variant has: the row was written by a newer (or broken) version.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} code {code:?} in stored data")]
pub struct UnknownCode {
    pub kind: &'static str,
    pub code: String,
}

/// Declares an enum whose variants are stored as the given text codes, with `code()`,
/// `parse()`, `Display` and the sqlx mapping to a Postgres `text` column (and arrays).
macro_rules! stored_code {
    (
        $(#[$doc:meta])*
        pub enum $name:ident {
            $($(#[$vdoc:meta])* $variant:ident = $code:literal,)+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &[Self] = &[$(Self::$variant,)+];

            /// The stored spelling.
            pub fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The variant of a stored spelling.
            pub fn parse(code: &str) -> Result<Self, $crate::saga::code::UnknownCode> {
                match code {
                    $($code => Ok(Self::$variant),)+
                    _ => Err($crate::saga::code::UnknownCode {
                        kind: stringify!($name),
                        code: code.to_owned(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }

        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl sqlx::postgres::PgHasArrayType for $name {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.code(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $name {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                Ok(Self::parse(text)?)
            }
        }
    };
}
pub(crate) use stored_code;

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

impl sqlx::Type<sqlx::Postgres> for GrpcCode {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <&str as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl sqlx::postgres::PgHasArrayType for GrpcCode {
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        <&str as sqlx::postgres::PgHasArrayType>::array_type_info()
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for GrpcCode {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <String as sqlx::Encode<sqlx::Postgres>>::encode(self.name(), buf)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for GrpcCode {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Ok(Self::parse(text)?)
    }
}

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
