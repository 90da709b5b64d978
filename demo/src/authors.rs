//! `authors`: the gRPC back end, `mesh.demo.Authors/Get`.
//!
//! The two messages are declared with prost's derive instead of a `.proto` file: tonic's own
//! server and client machinery and prost's wire format are used as generated code would use
//! them, with no `protoc` and no build script. The service is one unary method, so the
//! hand-written dispatch below is all that code generation would add.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Result;
use http::uri::PathAndQuery;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codegen::{BoxFuture, Service};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstCodec;

use crate::faults::Faults;

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetAuthor {
    #[prost(uint32, tag = "1")]
    pub id: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Author {
    #[prost(uint32, tag = "1")]
    pub id: u32,
    #[prost(string, tag = "2")]
    pub name: String,
}

pub const SERVICE: &str = "mesh.demo.Authors";
pub const GET: &str = "/mesh.demo.Authors/Get";

const NAMES: &[&str] = &[
    "Ursula K. Le Guin",
    "Octavia E. Butler",
    "Samuel R. Delany",
    "Stanisław Lem",
    "Arkady and Boris Strugatsky",
];

pub fn name(id: u32) -> &'static str {
    NAMES[id as usize % NAMES.len()]
}

/// The server side: routes `GET` to [`Get`], anything else is `UNIMPLEMENTED`.
#[derive(Clone)]
pub struct Authors {
    faults: Arc<Faults>,
}

impl NamedService for Authors {
    const NAME: &'static str = SERVICE;
}

struct Get(Arc<Faults>);

impl UnaryService<GetAuthor> for Get {
    type Response = Author;
    type Future = BoxFuture<Response<Author>, Status>;

    fn call(&mut self, request: Request<GetAuthor>) -> Self::Future {
        let faults = self.0.clone();
        Box::pin(async move {
            let id = request.into_inner().id;
            if faults.next().await {
                return Err(Status::unavailable("injected failure"));
            }
            Ok(Response::new(Author {
                id,
                name: name(id).to_owned(),
            }))
        })
    }
}

impl<B> Service<http::Request<B>> for Authors
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == GET {
            let method = Get(self.faults.clone());
            return Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<Author, GetAuthor>::default());
                Ok(grpc.unary(method, req).await)
            });
        }
        Box::pin(async move { Ok(Status::new(Code::Unimplemented, "no such method").into_http()) })
    }
}

pub async fn run(listener: TcpListener, faults: Faults) -> Result<()> {
    tracing::info!(addr = %listener.local_addr()?, server = "authors", "listening");
    let service = Authors {
        faults: Arc::new(faults),
    };
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming(TcpListenerStream::new(listener))
        .await?;
    Ok(())
}

/// A client of `Authors/Get` on a tonic channel.
pub async fn get(channel: tonic::transport::Channel, id: u32) -> Result<Author, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("authors: {e}")))?;
    let codec = ProstCodec::<GetAuthor, Author>::default();
    let response = grpc
        .unary(
            Request::new(GetAuthor { id }),
            PathAndQuery::from_static(GET),
            codec,
        )
        .await?;
    Ok(response.into_inner())
}
