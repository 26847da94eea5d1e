use clap::Parser;
use server::config::{AuditCommand, Cli, Command};
use tracing_subscriber::EnvFilter;

// mimalloc: the profile of a page served on behalf spent a fifth of its samples in
// glibc's malloc and free (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("BEHALF_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let url = cli.database_url.clone();
    if let Some(path) = cli.audit_key_file.clone() {
        server::set_audit_key_file(path);
    }
    let outcome = match cli.command {
        Command::Serve(args) => server::cli::serve::serve(&url, args).await,
        Command::Migrate => server::open_database(&url).await.map(|db| {
            println!("Migrations applied ({}).", db.kind());
        }),
        Command::CreateMember(args) => {
            let email = args.email.clone();
            let role = args.role;
            server::cli::members::create_member_command(&url, args)
                .await
                .map(|id| {
                    println!("Created member {id}: {} ({role}).", email.trim());
                })
        }
        Command::Seed(args) => server::seed::run(&url, args).await.map(|report| {
            println!("{report}");
        }),
        Command::InitAdmin(args) => {
            server::cli::members::init_admin_command(&url, args)
                .await
                .map(|created| match created {
                    Some((email, password)) => server::seed::first_user::print_super_user(&email, &password),
                    None => println!("A super user already exists; sign in with their credentials."),
                })
        }
        Command::Bench(args) => server::bench::run(args).await,
        Command::Audit { command } => {
            let outcome = match command {
                AuditCommand::Verify { anchor } => {
                    server::cli::audit::audit_verify_command(&url, anchor).await
                }
                AuditCommand::Anchor => server::cli::audit::audit_anchor_command(&url).await,
            };
            match outcome {
                Ok(Ok(message)) => {
                    println!("{message}");
                    Ok(())
                }
                Ok(Err(broken)) => Err(broken.into()),
                Err(error) => Err(error),
            }
        }
    };
    if let Err(error) = outcome {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
