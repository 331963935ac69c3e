"""RL on verifiable rewards and RLHF: rollouts, rewards, advantages and the roles that run them."""
