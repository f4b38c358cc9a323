//! The live feed: a Durable Object holding the debuggers' WebSockets
//! (hibernation API: idle sockets cost nothing) and the last events, so a
//! newly opened debugger sees recent history.

use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, SqlStorageValue, State,
    WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

/// Events kept for newly connected debuggers.
const BACKLOG: i64 = 200;

#[durable_object]
pub struct Live {
    state: State,
}

impl DurableObject for Live {
    fn new(state: State, _env: Env) -> Self {
        let _ = state
            .storage()
            .sql()
            .exec("CREATE TABLE IF NOT EXISTS recent (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)", None);
        Live { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        if req.path() == "/publish" {
            let summaries: Vec<serde_json::Value> = req.json().await?;
            let sockets = self.state.get_websockets();
            for s in &summaries {
                let text = s.to_string();
                sql.exec(
                    "INSERT INTO recent (body) VALUES (?)",
                    vec![SqlStorageValue::from(text.clone())],
                )?;
                for ws in &sockets {
                    let _ = ws.send_with_str(&text);
                }
            }
            sql.exec(
                "DELETE FROM recent WHERE id <= (SELECT MAX(id) FROM recent) - ?",
                vec![SqlStorageValue::from(BACKLOG)],
            )?;
            return Response::ok("published");
        }
        // A debugger connects: accept with hibernation, then send the backlog.
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        #[derive(serde::Deserialize)]
        struct Row {
            body: String,
        }
        let rows: Vec<Row> = sql
            .exec("SELECT body FROM recent ORDER BY id", None)?
            .to_array()?;
        for r in rows {
            let _ = pair.server.send_with_str(&r.body);
        }
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        if let WebSocketIncomingMessage::String(s) = message {
            if s == "ping" {
                let _ = ws.send_with_str("pong");
            }
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        let _ = ws.close(Some(1000), Some("bye"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> Result<()> {
        Ok(())
    }
}
