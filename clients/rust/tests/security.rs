//! TLS, mutual TLS and bearer-token authentication, driven through the SDK's options against
//! the real `terse` binary. Certificates: tests/fixtures/tls (made by its make.sh).

use std::time::Duration;

use terse_client::{
    Client, ClientBuilder, Code,
    proto::{context::v1::PromptOptions, models::v1::ListModelsRequest},
};
use terse_e2e::{ConfigFile, Server, workspace};

const TOKEN_FROM_FILE: &str = "file-token-7f3a9c1e5b2d4f60";
const TOKEN_FROM_ENV: &str = "env-token-0d1e2f3a4b5c6d7e";

fn tls_file(name: &str) -> String {
    workspace()
        .join("tests/fixtures/tls")
        .join(name)
        .to_str()
        .expect("UTF-8 path")
        .to_string()
}

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(tls_file(name)).expect("fixture")
}

/// A builder for `https://127.0.0.1:PORT` trusting the test CA.
fn tls_builder(server: &Server) -> ClientBuilder {
    Client::builder(format!("https://{}", server.grpc_addr))
        .tls_ca(pem("ca.pem"), Some("localhost"))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .retries(0, Duration::from_millis(10))
}

async fn list_models(client: &Client) -> Result<usize, terse_client::Error> {
    let response = client
        .call(|| {
            let mut models = client.models();
            let request = client.request(ListModelsRequest::default());
            async move { models.list_models(request).await }
        })
        .await?;
    Ok(response.models.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_bearer_tokens_from_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("# clients\n{TOKEN_FROM_FILE}\n\n")).unwrap();
    let config = ConfigFile::new(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n[auth]\ntokens_file = \"{}\"\ntokens_env = \"TERSE_TEST_TOKENS\"\n",
        tls_file("server.pem"),
        tls_file("server.key"),
        tokens.display()
    ));
    // SAFETY: set before the server process is spawned; no other thread of this test binary
    // reads the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("TERSE_TEST_TOKENS", format!("{TOKEN_FROM_ENV},"))
    };
    let server = Server::start(&[
        "--config",
        config.arg(),
        "--services",
        "models,context",
        "--log-level",
        "debug",
    ])
    .await;

    for token in [TOKEN_FROM_FILE, TOKEN_FROM_ENV] {
        let client = tls_builder(&server)
            .auth_token(token)
            .connect()
            .await
            .unwrap();
        assert!(list_models(&client).await.unwrap() > 0);
        let compressed = client
            .compress_prompt(
                ["The quick brown fox jumps over the lazy dog. ".repeat(4)],
                PromptOptions {
                    rate: Some(0.5),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(compressed.compressed_tokens < compressed.origin_tokens);
    }

    let anonymous = tls_builder(&server).connect().await.unwrap();
    // Health needs no token (probes carry no secret)...
    assert!(
        anonymous
            .serving("compress.context.v1.ContextService")
            .await
            .unwrap()
    );
    // ...every service call does.
    let refused = list_models(&anonymous).await.unwrap_err();
    assert_eq!(refused.code(), Some(Code::Unauthenticated), "{refused}");
    for wrong in [&TOKEN_FROM_FILE[1..], "file-token-7f3a9c1e5b2d4f6X"] {
        let client = tls_builder(&server)
            .auth_token(wrong)
            .connect()
            .await
            .unwrap();
        let refused = list_models(&client).await.unwrap_err();
        assert_eq!(refused.code(), Some(Code::Unauthenticated), "{refused}");
        assert!(!refused.to_string().contains(wrong), "{refused}");
    }

    // Plaintext to the TLS port fails; so does TLS that does not trust the server's CA.
    let plaintext = Client::builder(server.grpc_url.clone())
        .auth_token(TOKEN_FROM_FILE)
        .connect_timeout(Duration::from_secs(5))
        .retries(0, Duration::from_millis(10))
        .connect()
        .await;
    let plaintext_failed = match plaintext {
        Err(_) => true,
        Ok(client) => list_models(&client).await.is_err(),
    };
    assert!(plaintext_failed, "plaintext call to a TLS port succeeded");
    let untrusting = Client::builder(format!("https://{}", server.grpc_addr))
        .tls_ca(pem("rogue-client.pem"), Some("localhost"))
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await;
    assert!(
        untrusting.is_err(),
        "a client that does not trust the CA connected"
    );

    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"terse_grpc_requests_total{code="Unauthenticated",method="/compress.models.v1.ModelRepositoryService/ListModels"} 3"#),
        "{metrics}"
    );
    // No secret reaches the log, even at debug level.
    let log = server.stderr();
    assert!(
        log.contains("tls=\"tls\"") || log.contains("tls=tls"),
        "{log}"
    );
    for secret in [TOKEN_FROM_FILE, TOKEN_FROM_ENV, "BEGIN PRIVATE KEY"] {
        assert!(!log.contains(secret), "log reveals `{secret}`");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_clients_with_a_certificate_from_the_configured_ca() {
    let server = Server::start(&[
        "--services",
        "models",
        "--tls-cert",
        &tls_file("server.pem"),
        "--tls-key",
        &tls_file("server.key"),
        "--tls-client-ca",
        &tls_file("ca.pem"),
    ])
    .await;
    let trusted = tls_builder(&server)
        .tls_identity(pem("client.pem"), pem("client.key"))
        .connect()
        .await
        .unwrap();
    assert!(list_models(&trusted).await.unwrap() > 0);

    for (name, builder) in [
        ("no certificate", tls_builder(&server)),
        (
            "certificate from another CA",
            tls_builder(&server).tls_identity(pem("rogue-client.pem"), pem("rogue-client.key")),
        ),
    ] {
        let refused = match builder.connect().await {
            Err(_) => true,
            Ok(client) => list_models(&client).await.is_err(),
        };
        assert!(refused, "{name}: admitted");
    }
}

#[tokio::test]
async fn misconfigured_security_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "tooshort\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--tls-cert".into(), tls_file("server.pem")],
            "tls.cert and tls.key must be set together",
        ),
        (
            vec![
                "--tls-cert".into(),
                tls_file("server.pem"),
                "--tls-key".into(),
                tls_file("make.sh"),
            ],
            "is not a PEM file",
        ),
        (
            vec!["--auth-tokens-file".into(), short.display().to_string()],
            "shorter than 16 characters",
        ),
        (
            vec!["--auth-tokens-file".into(), "/nonexistent/tokens".into()],
            "cannot read auth.tokens_file",
        ),
    ];
    for (args, expected) in cases {
        let mut all: Vec<&str> = vec!["--services", "vision", "--listen", "127.0.0.1:0"];
        all.extend(args.iter().map(String::as_str));
        let failure = terse_e2e::run_to_exit(&all, &[]).await;
        assert!(!failure.status.success(), "{args:?} started");
        assert!(
            failure.stderr.contains(expected),
            "{args:?}: {}",
            failure.stderr
        );
    }
}
