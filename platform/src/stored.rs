//! The typed vocabulary every service stores: enums kept as text codes that must parse
//! ([`stored_code!`]) and UUID newtypes for ids ([`uuid_id!`]). One spelling per value in
//! the database, and a stored value no variant has is an error, never a default: a row
//! written by a newer (or broken) version stops the read instead of being misread.

/// A stored code that no variant has: the row was written by a newer (or broken) version.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} code {code:?} in stored data")]
pub struct UnknownCode {
    pub kind: &'static str,
    pub code: String,
}

/// Declares an enum whose variants are stored as the given text codes, with `code()`,
/// `parse()`, `Display` and the sqlx mapping to a Postgres `text` column (and arrays).
///
/// ```
/// platform::stored_code! {
///     /// Where a parcel is.
///     pub enum ParcelStatus {
///         Packed = "PACKED",
///         Sent = "SENT",
///     }
/// }
/// assert_eq!(ParcelStatus::parse("SENT").ok(), Some(ParcelStatus::Sent));
/// assert!(ParcelStatus::parse("LOST").is_err());
/// ```
#[macro_export]
macro_rules! stored_code {
    (
        $(#[$doc:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vdoc:meta])* $variant:ident = $code:literal,)+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order (not every enum needs it).
            #[allow(dead_code)]
            pub const ALL: &[Self] = &[$(Self::$variant,)+];

            /// The stored spelling.
            pub fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The variant of a stored spelling.
            pub fn parse(code: &str) -> ::std::result::Result<Self, $crate::stored::UnknownCode> {
                match code {
                    $($code => Ok(Self::$variant),)+
                    _ => Err($crate::stored::UnknownCode {
                        kind: stringify!($name),
                        code: code.to_owned(),
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.code())
            }
        }

        $crate::stored_text!($name, |value: &$name| value.code(), $name::parse);
    };
}

/// The sqlx mapping of a type stored as Postgres `text` (and `text[]`), given how to spell
/// a value and how to parse a spelling: what [`stored_code!`] uses, and what a code with
/// its own spelling rules (e.g. gRPC status names) uses directly.
#[macro_export]
macro_rules! stored_text {
    ($name:ty, $spell:expr, $parse:expr) => {
        impl $crate::__private::sqlx::Type<$crate::__private::sqlx::Postgres> for $name {
            fn type_info() -> $crate::__private::sqlx::postgres::PgTypeInfo {
                <&str as $crate::__private::sqlx::Type<$crate::__private::sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &$crate::__private::sqlx::postgres::PgTypeInfo) -> bool {
                <&str as $crate::__private::sqlx::Type<$crate::__private::sqlx::Postgres>>::compatible(ty)
            }
        }

        impl $crate::__private::sqlx::postgres::PgHasArrayType for $name {
            fn array_type_info() -> $crate::__private::sqlx::postgres::PgTypeInfo {
                <&str as $crate::__private::sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }

        impl $crate::__private::sqlx::Encode<'_, $crate::__private::sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut $crate::__private::sqlx::postgres::PgArgumentBuffer,
            ) -> ::std::result::Result<
                $crate::__private::sqlx::encode::IsNull,
                $crate::__private::sqlx::error::BoxDynError,
            > {
                let spelling = ($spell)(self);
                <&str as $crate::__private::sqlx::Encode<$crate::__private::sqlx::Postgres>>::encode(
                    ::std::convert::AsRef::<str>::as_ref(&spelling),
                    buf,
                )
            }
        }

        impl<'r> $crate::__private::sqlx::Decode<'r, $crate::__private::sqlx::Postgres> for $name {
            fn decode(
                value: $crate::__private::sqlx::postgres::PgValueRef<'r>,
            ) -> ::std::result::Result<Self, $crate::__private::sqlx::error::BoxDynError> {
                let text =
                    <&str as $crate::__private::sqlx::Decode<$crate::__private::sqlx::Postgres>>::decode(value)?;
                Ok(($parse)(text)?)
            }
        }
    };
}

/// Declares a UUID newtype stored as Postgres `uuid`: a saga id, an order id and a payment
/// id are all UUIDs, and a swapped argument must not compile.
///
/// ```
/// platform::uuid_id!(
///     /// A parcel.
///     pub ParcelId
/// );
/// let id = ParcelId::from(uuid::Uuid::nil());
/// assert_eq!(id.as_uuid(), uuid::Uuid::nil());
/// ```
#[macro_export]
macro_rules! uuid_id {
    ($(#[$doc:meta])* $vis:vis $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis struct $name($crate::__private::uuid::Uuid);

        impl $name {
            pub fn as_uuid(self) -> $crate::__private::uuid::Uuid {
                self.0
            }
        }

        impl ::std::convert::From<$crate::__private::uuid::Uuid> for $name {
            fn from(id: $crate::__private::uuid::Uuid) -> Self {
                Self(id)
            }
        }

        impl ::std::convert::From<$name> for $crate::__private::uuid::Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl $crate::__private::sqlx::Type<$crate::__private::sqlx::Postgres> for $name {
            fn type_info() -> $crate::__private::sqlx::postgres::PgTypeInfo {
                <$crate::__private::uuid::Uuid as $crate::__private::sqlx::Type<$crate::__private::sqlx::Postgres>>::type_info()
            }
        }

        impl $crate::__private::sqlx::postgres::PgHasArrayType for $name {
            fn array_type_info() -> $crate::__private::sqlx::postgres::PgTypeInfo {
                <$crate::__private::uuid::Uuid as $crate::__private::sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }

        impl $crate::__private::sqlx::Encode<'_, $crate::__private::sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut $crate::__private::sqlx::postgres::PgArgumentBuffer,
            ) -> ::std::result::Result<
                $crate::__private::sqlx::encode::IsNull,
                $crate::__private::sqlx::error::BoxDynError,
            > {
                <$crate::__private::uuid::Uuid as $crate::__private::sqlx::Encode<$crate::__private::sqlx::Postgres>>::encode_by_ref(&self.0, buf)
            }
        }

        impl<'r> $crate::__private::sqlx::Decode<'r, $crate::__private::sqlx::Postgres> for $name {
            fn decode(
                value: $crate::__private::sqlx::postgres::PgValueRef<'r>,
            ) -> ::std::result::Result<Self, $crate::__private::sqlx::error::BoxDynError> {
                Ok(Self(<$crate::__private::uuid::Uuid as $crate::__private::sqlx::Decode<$crate::__private::sqlx::Postgres>>::decode(value)?))
            }
        }
    };
}
