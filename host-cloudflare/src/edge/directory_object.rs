//! A directory shard (`dir:<n>`): which sockets are let in and which are in which chat
//! room, and counters, as user and chat objects report them (`crate::directory`).

use crate::wire::Batch;
use worker::*;

#[durable_object]
pub struct DirectoryObject {
    state: State,
    #[allow(dead_code)]
    env: Env,
}

impl DurableObject for DirectoryObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        super::sql::directory_schema(&sql).map_err(Error::RustError)?;
        match req.path().as_str() {
            "/batch" => {
                let batch: Batch = super::read_json(&mut req).await?;
                for item in &batch.items {
                    super::sql::directory_apply(&sql, item).map_err(Error::RustError)?;
                }
                Response::ok("")
            }
            "/list" => Response::from_json(&super::sql::load_shard(&sql).map_err(Error::RustError)?),
            _ => Response::error("not found", 404),
        }
    }
}
