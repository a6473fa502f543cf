use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = sts_webhook::Args::parse();
    sts_webhook::init_tracing(args.log_format);
    match sts_webhook::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sts-webhook: {}", sts_webhook::error_report(&err));
            ExitCode::FAILURE
        }
    }
}
