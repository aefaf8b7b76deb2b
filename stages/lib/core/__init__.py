"""What every stage shares: settings (`params`), file names (`paths`), atomic writes and the error boundary
(`io`), the data and its splits (`data`), scores with their intervals (`scores`), and the run's trace and log
filter (`trace`, `noise`). Editing a module here reruns the stages that import it, which for most is all of them."""
