//! Generated types, clients and servers of the shop's gRPC APIs.
//!
//! Layout: one module per protobuf package (`shop.<service>.v1`, and `shop.common.v1`
//! for the messages they share), [`reason`] for the
//! `ErrorInfo` reasons the services share, and [`FILE_DESCRIPTOR_SET`] for server
//! reflection.

pub mod reason;

/// The encoded `FileDescriptorSet` of every shop proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("shop_descriptor");

/// `Money` and `Address`, shared by every service's API.
#[allow(clippy::all, missing_docs)]
pub mod common {
    pub mod v1 {
        tonic::include_proto!("shop.common.v1");
    }
}

#[allow(clippy::all, missing_docs)]
pub mod order {
    pub mod v1 {
        tonic::include_proto!("shop.order.v1");
    }
}

#[allow(clippy::all, missing_docs)]
pub mod payment {
    pub mod v1 {
        tonic::include_proto!("shop.payment.v1");
    }
}

#[allow(clippy::all, missing_docs)]
pub mod inventory {
    pub mod v1 {
        tonic::include_proto!("shop.inventory.v1");
    }
}

#[allow(clippy::all, missing_docs)]
pub mod shipping {
    pub mod v1 {
        tonic::include_proto!("shop.shipping.v1");
    }
}

/// The choreographed checkout's events and their envelope.
#[allow(clippy::all, missing_docs)]
pub mod events {
    pub mod v1 {
        tonic::include_proto!("shop.events.v1");
    }
}

#[allow(clippy::all, missing_docs)]
pub mod checkout {
    pub mod v1 {
        tonic::include_proto!("shop.checkout.v1");
    }
}

/// The operator's dead letters of every service, through the front door.
#[allow(clippy::all, missing_docs)]
pub mod operations {
    pub mod v1 {
        tonic::include_proto!("shop.operations.v1");
    }
}
