//! [`grpc_delegate!`](crate::grpc_delegate): the tonic service trait of a service,
//! written once for all of them.
//!
//! The traits tonic generates take a `tonic::Request<Req>` and answer with a
//! `tonic::Response<Resp>` or a `Status`. The services' handlers work on plain messages
//! and [`ApiError`](crate::ApiError) instead, so each RPC would otherwise need the same
//! adapter: unwrap the request, call the handler, [`reply`](crate::error::reply).

/// Implements a generated tonic service trait by handing each RPC's message to the
/// inherent method of the same name,
/// `async fn rpc(&self, request: Req) -> Result<Resp, ApiError>`, and turning its result
/// into the reply with [`reply`](crate::error::reply) (so every error maps to a status
/// with its details in one place).
///
/// List every RPC of the trait as `name(Request) -> Response;`. A service with an RPC
/// that needs the request's metadata, or streams, implements its trait by hand.
///
/// ```
/// use platform::ApiError;
/// use shop_proto::shipping::v1::{self as pb, shipping_service_server::ShippingService};
///
/// struct ShippingApi;
///
/// impl ShippingApi {
///     async fn create_shipment(
///         &self,
///         _req: pb::CreateShipmentRequest,
///     ) -> Result<pb::CreateShipmentResponse, ApiError> {
///         Err(ApiError::invalid("address", "is required"))
///     }
///
///     async fn cancel_shipment(
///         &self,
///         _req: pb::CancelShipmentRequest,
///     ) -> Result<pb::CancelShipmentResponse, ApiError> {
///         Ok(pb::CancelShipmentResponse::default())
///     }
///
///     async fn get_shipment(
///         &self,
///         req: pb::GetShipmentRequest,
///     ) -> Result<pb::GetShipmentResponse, ApiError> {
///         Err(ApiError::not_found("shipment of order", req.order_id))
///     }
/// }
///
/// platform::grpc_delegate! {
///     impl ShippingService for ShippingApi {
///         create_shipment(pb::CreateShipmentRequest) -> pb::CreateShipmentResponse;
///         cancel_shipment(pb::CancelShipmentRequest) -> pb::CancelShipmentResponse;
///         get_shipment(pb::GetShipmentRequest) -> pb::GetShipmentResponse;
///     }
/// }
/// ```
#[macro_export]
macro_rules! grpc_delegate {
    (
        impl $($service:ident)::+ for $api:ty {
            $( $rpc:ident($request:ty) -> $response:ty; )*
        }
    ) => {
        #[$crate::__private::tonic::async_trait]
        impl $($service)::+ for $api {
            $(
                async fn $rpc(
                    &self,
                    request: $crate::__private::tonic::Request<$request>,
                ) -> $crate::error::Reply<$response> {
                    $crate::error::reply(self.$rpc(request.into_inner()).await)
                }
            )*
        }
    };
}
