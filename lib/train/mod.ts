/**
 * Training: the EMA trainer with checkpoints and resume, AdamW, the schedules and the recipes.
 *
 * @module
 */
export { AdamW, type AdamWOptions, decays } from "./adamw.ts";
export { emaMomentum, learningRate, type LrSchedule, weightDecay } from "./schedules.ts";
export {
  EMATrainer,
  type FitResult,
  type StepInfo,
  TRAINER_DEFAULTS,
  type TrainerOptions,
  TrainingDiverged,
} from "./trainer.ts";
export { recipe, RECIPES } from "./recipes.ts";
export {
  type MetricsRow,
  parseMetrics,
  readRunConfig,
  recordResume,
  RUN_CONFIG_FILE,
  type RunConfig,
  type RunVersions,
  runVersions,
  writeRunConfig,
} from "./run_record.ts";
