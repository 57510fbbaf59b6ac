use std::process::ExitCode;

use clap::Parser;
use orchestrator::config::{Cli, OrchestratorCommand};
use platform::security::token::Signer;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Some(OrchestratorCommand::Token {
            subject,
            operator,
            ttl,
        }) => return print_token(&cli.tokens, &subject, operator, ttl),
        Some(OrchestratorCommand::Common(command)) => Some(command),
        None => None,
    };
    let mut settings = cli.saga.settings(&cli.reads);
    settings.tokens = cli.tokens;
    platform::server::run_binary(
        orchestrator::NAME,
        cli.listen,
        cli.service,
        command,
        |config| orchestrator::build(config, settings),
    )
    .await
}

/// `orchestrator token`: a development token, printed alone on stdout for `$(...)`.
fn print_token(
    tokens: &platform::security::token::TokenArgs,
    subject: &str,
    operator: bool,
    ttl: std::time::Duration,
) -> ExitCode {
    let Some(secret) = &tokens.auth_jwt_secret_file else {
        eprintln!(
            "orchestrator token: set AUTH_JWT_SECRET_FILE to the secret tokens are signed with"
        );
        return ExitCode::from(2);
    };
    match Signer::from_secret_file(secret, &tokens.auth_issuer)
        .and_then(|signer| signer.sign(subject, operator, ttl))
    {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("orchestrator token: {error}");
            ExitCode::from(2)
        }
    }
}
