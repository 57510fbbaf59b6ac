//! Generated types, clients and servers of the shop's gRPC APIs.
//!
//! Layout: one module per protobuf package (`shop.<service>.v1`), plus
//! [`FILE_DESCRIPTOR_SET`] for server reflection.
#![allow(clippy::all, missing_docs)]

/// The encoded `FileDescriptorSet` of every shop proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("shop_descriptor");

pub mod order {
    pub mod v1 {
        tonic::include_proto!("shop.order.v1");
    }
}

pub mod payment {
    pub mod v1 {
        tonic::include_proto!("shop.payment.v1");
    }
}

pub mod inventory {
    pub mod v1 {
        tonic::include_proto!("shop.inventory.v1");
    }
}

pub mod shipping {
    pub mod v1 {
        tonic::include_proto!("shop.shipping.v1");
    }
}

pub mod checkout {
    pub mod v1 {
        tonic::include_proto!("shop.checkout.v1");
    }
}
