//! `kb_stream::connect` with the `[nats]` options against real nats-servers that demand
//! authentication or TLS: the right credentials get in, wrong ones fail at once with a clear
//! error, and no error shows a secret.

use kb_core::settings::NatsSettings;
use kb_core::Secret;
use kb_stream::StreamErrorKind;
use kb_testkit::{NatsAuth, NatsConfig, NatsServer, NatsTls, TestCerts};

async fn server(config: NatsConfig) -> anyhow::Result<NatsServer> {
    kb_testkit::stack().await?.nats_with(config).await
}

fn settings(nats: &NatsServer) -> NatsSettings {
    NatsSettings {
        url: nats.url(),
        ..NatsSettings::default()
    }
}

/// Connects and makes one JetStream request: proof that the connection is usable.
async fn works(s: &NatsSettings) -> anyhow::Result<()> {
    let (_client, js) = kb_stream::connect(s, "connect-test").await?;
    js.query_account().await?;
    Ok(())
}

/// Connecting fails at once as a configuration error; returns its text.
async fn refused(s: &NatsSettings) -> String {
    let started = std::time::Instant::now();
    let err = match kb_stream::connect(s, "connect-test").await {
        Ok(_) => panic!("connecting with {s:?} should fail"),
        Err(e) => e,
    };
    assert_eq!(err.kind, StreamErrorKind::Config, "{err}");
    assert!(started.elapsed().as_secs() < 10, "not retried: {err}");
    err.to_string()
}

#[tokio::test]
async fn token_and_user_password_get_in_and_wrong_ones_fail_without_showing_them(
) -> anyhow::Result<()> {
    let nats = server(NatsConfig {
        auth: NatsAuth::Token("right-token".into()),
        ..Default::default()
    })
    .await?;
    works(&NatsSettings {
        token: Secret::new("right-token"),
        ..settings(&nats)
    })
    .await?;
    // A token in the URL works too; a wrong one in the URL is not shown.
    works(&NatsSettings {
        url: format!("nats://right-token@127.0.0.1:{}", nats.port()),
        ..settings(&nats)
    })
    .await?;
    let text = refused(&NatsSettings {
        url: format!("nats://wrong-url-token@127.0.0.1:{}", nats.port()),
        ..settings(&nats)
    })
    .await;
    assert!(!text.contains("wrong-url-token"), "{text}");
    assert!(text.contains("nats://***@127.0.0.1"), "{text}");
    assert!(text.contains("authorization violation"), "{text}");
    let text = refused(&settings(&nats)).await;
    assert!(text.contains("authorization violation"), "{text}");
    assert!(text.contains("check the credentials"), "{text}");

    let nats = server(NatsConfig {
        auth: NatsAuth::User {
            user: "kb".into(),
            password: "right-pass".into(),
        },
        ..Default::default()
    })
    .await?;
    let user = |password: &str| NatsSettings {
        user: "kb".into(),
        password: Secret::new(password),
        ..settings(&nats)
    };
    works(&user("right-pass")).await?;
    let text = refused(&user("wrong-pass")).await;
    assert!(!text.contains("wrong-pass"), "{text}");
    assert!(text.contains("authorization violation"), "{text}");
    Ok(())
}

#[tokio::test]
async fn an_nkey_seed_file_gets_in_and_no_seed_or_another_seed_does_not() -> anyhow::Result<()> {
    let (public, seed) = kb_testkit::nkey_user()?;
    let (_, other_seed) = kb_testkit::nkey_user()?;
    let nats = server(NatsConfig {
        auth: NatsAuth::Nkey(public),
        ..Default::default()
    })
    .await?;
    // No temp-dir crate here: a unique name, removed below.
    let seed_file = std::env::temp_dir().join(format!(
        "kb-connect-test-{}-{:?}.nk",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    ));
    std::fs::write(&seed_file, format!("{seed}\n"))?;
    let with_seed = NatsSettings {
        nkey_seed_file: Some(seed_file.clone()),
        ..settings(&nats)
    };
    works(&with_seed).await?;
    refused(&settings(&nats)).await;
    std::fs::write(&seed_file, &other_seed)?;
    let text = refused(&with_seed).await;
    assert!(!text.contains(&other_seed), "{text}");
    std::fs::remove_file(&seed_file)?;
    let text = refused(&with_seed).await;
    assert!(text.contains("nats.nkey_seed_file"), "{text}");
    Ok(())
}

#[tokio::test]
async fn tls_with_a_client_certificate_gets_in_and_without_the_ca_or_the_certificate_does_not(
) -> anyhow::Result<()> {
    let certs = TestCerts::generate()?;
    let nats = server(NatsConfig {
        tls: Some(NatsTls::server_side(&certs, true)),
        ..Default::default()
    })
    .await?;
    let full = NatsSettings {
        tls_ca_file: Some(certs.ca()),
        tls_cert_file: Some(certs.client_cert()),
        tls_key_file: Some(certs.client_key()),
        tls_required: true,
        ..settings(&nats)
    };
    works(&full).await?;
    works(&NatsSettings {
        url: format!("tls://127.0.0.1:{}", nats.port()),
        tls_required: false,
        ..full.clone()
    })
    .await?;
    let text = refused(&NatsSettings {
        tls_ca_file: None,
        ..full.clone()
    })
    .await;
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains("nats.tls_ca_file"), "{text}");
    refused(&NatsSettings {
        tls_cert_file: None,
        tls_key_file: None,
        ..full.clone()
    })
    .await;
    // A client that insists on TLS does not talk to a server without it.
    let plain = server(NatsConfig::default()).await?;
    refused(&NatsSettings {
        tls_required: true,
        ..settings(&plain)
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn a_broker_that_is_not_there_yet_is_waited_for() -> anyhow::Result<()> {
    let mut nats = server(NatsConfig::default()).await?;
    nats.stop().await?;
    let s = NatsSettings {
        url: format!("nats://s3cret@127.0.0.1:{}", nats.port()),
        ..settings(&nats)
    };
    // Connecting returns at once and keeps trying in the background.
    let (client, js) = kb_stream::connect(&s, "connect-test").await?;
    nats.start().await?;
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while client.connection_state() != async_nats::connection::State::Connected {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await?;
    js.query_account().await?;
    Ok(())
}

/// `nats.url` may list a cluster's servers, comma-separated (the compose cluster file does):
/// a list connects, with credentials in one of the URLs, and the client fails over to the
/// other server when the one it is on stops.
#[tokio::test]
async fn a_comma_separated_server_list_connects_and_fails_over() -> anyhow::Result<()> {
    let stack = kb_testkit::stack().await?;
    let a = stack
        .nats_with(NatsConfig {
            auth: NatsAuth::Token("list-token".into()),
            ..Default::default()
        })
        .await?;
    let b = stack
        .nats_with(NatsConfig {
            auth: NatsAuth::Token("list-token".into()),
            ..Default::default()
        })
        .await?;
    let list = NatsSettings {
        url: format!(
            "nats://list-token@127.0.0.1:{}, nats://127.0.0.1:{}",
            a.port(),
            b.port()
        ),
        ..NatsSettings::default()
    };
    works(&list).await?;
    let (client, _js) = kb_stream::connect(&list, "connect-test").await?;
    let first = client.server_info().port;
    let other = if first == a.port() {
        b.port()
    } else {
        a.port()
    };
    // Dropping a test server kills it; the other one stays up until the end.
    drop(if first == a.port() { a } else { b });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !(client.server_info().port == other && client.flush().await.is_ok()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no failover from port {first} to {other}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}
