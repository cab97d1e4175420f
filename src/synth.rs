//! `taprec synth`: synthetic SIP + RTP captures whose parties send distinct tones.

/// Options of `taprec synth`.
#[derive(Debug, Clone, clap::Args)]
pub struct SynthArgs {
    /// Output pcap file.
    #[arg(short, long)]
    pub output: std::path::PathBuf,
}

/// Writes the capture described by `args`.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let _ = args;
    todo!()
}
